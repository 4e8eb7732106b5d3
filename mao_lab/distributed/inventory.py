"""The engine inventory: what each engine is, runs and sees (host, pid, version, devices).

``_PROBE`` runs on each engine with ``execute`` (it works even where mao_lab is missing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Runs on each engine with `execute`, so it works even where mao_lab cannot be imported.
_PROBE = """
def _mao_probe():
    import os, socket, sys
    out = {"host": socket.gethostname(), "pid": os.getpid(), "python": sys.version.split()[0],
           "version": None, "error": None, "devices": [], "mpi_rank": None, "mpi_size": None}
    try:
        import mao_lab
        out["version"] = mao_lab.__version__
        out["devices"] = [d.as_dict() for d in mao_lab.devices(calibrated=False)]
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    if "mpi4py.MPI" in sys.modules or any(
            k in os.environ for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK")):
        try:
            from mpi4py import MPI
            out["mpi_rank"], out["mpi_size"] = MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size
        except Exception:
            pass
    return out
_mao_probe_result = _mao_probe()
"""


@dataclass
class EngineInfo:
    """What one engine is: where it runs, what it runs and which devices it sees."""

    id: int
    host: str
    pid: int
    python: str
    version: str | None
    devices: list[dict[str, Any]] = field(default_factory=list)
    device: str | None = None  # the device chosen for training (set by the trainer)
    mpi_rank: int | None = None
    mpi_size: int | None = None
    error: str | None = None
    samples_per_s: float | None = None  # calibrated throughput for the current model

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict."""
        return asdict(self)


class Inventory(list):
    """A list of EngineInfo that prints as a table (terminal) and HTML (notebook)."""

    COLUMNS = ("id", "host", "pid", "version", "mpi_rank", "device", "samples_per_s", "devices")

    def _rows(self) -> list[list[str]]:
        rows = []
        for e in self:
            sps = "-" if e.samples_per_s is None else f"{e.samples_per_s:.0f}"
            devs = ", ".join(d.get("key", "?") for d in e.devices) or "-"
            rows.append([str(e.id), e.host, str(e.pid), str(e.version), str(e.mpi_rank),
                         str(e.device or "-"), sps, devs])
        return rows

    def __str__(self) -> str:
        rows = [list(self.COLUMNS)] + self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>"
                       for r in self._rows())
        return f'<table class="mao-engines"><tr>{head}</tr>{body}</table>'
