"""Devices and backends: the inventory, ``get_backend`` and the Backend protocol.

Example:
    >>> from mao_lab.backends import get_backend
    >>> get_backend("numpy").kind
    'numpy'
"""

from __future__ import annotations

import os

from ..errors import DeviceError
from .base import ACTIVATIONS, Backend, DeviceInfo
from .inventory import calibrate, numpy_device_info, opencl_devices

__all__ = [
    "ACTIVATIONS", "Backend", "DeviceInfo", "DeviceList", "devices", "get_backend",
    "available_keys",
]

_BACKENDS: dict[str, Backend] = {}
_GFLOPS: dict[str, float] = {}


def available_keys() -> list[str]:
    """Every key ``get_backend`` accepts for this machine (besides 'auto'/'opencl')."""
    return ["numpy"] + [info.key for info, _ in opencl_devices()]


def _resolve_opencl(spec: str) -> str:
    """Map 'opencl', 'opencl:<p>:<d>' (indices or name substrings) to a stable key."""
    devs = opencl_devices()
    if not devs:
        raise DeviceError(
            f"device {spec!r}: no OpenCL device was found. Install a driver "
            "(pip install 'mao_lab[pocl]' for the CPU driver) or use 'numpy'."
        )
    parts = spec.split(":")
    if len(parts) == 1:  # best by type: GPU > accelerator > CPU, then stable key order
        rank = {"GPU": 0, "ACCELERATOR": 1, "CPU": 2}
        return min(devs, key=lambda t: (rank.get(t[0].device_type, 3), t[0].key))[0].key
    if len(parts) != 3:
        raise DeviceError(f"device {spec!r}: expected 'opencl:<platform>:<device>'")
    plat, dev = parts[1].lower(), parts[2].lower()
    pidx = sorted({i.key.split(":")[1] for i, _ in devs})
    for info, _ in devs:
        _, pi, di = info.key.split(":")
        pmatch = plat == pi or (not plat.isdigit() and plat in info.platform.lower())
        dmatch = dev == di or (not dev.isdigit() and dev in info.name.lower())
        if pmatch and dmatch:
            return info.key
    raise DeviceError(
        f"device {spec!r} matches no OpenCL device (platform indices {pidx}); available: "
        + "; ".join(f"{i.key} = {i.platform} / {i.name}" for i, _ in devs)
    )


def _make(key: str) -> Backend:
    if key == "numpy":
        from .numpy_backend import NumpyBackend

        return NumpyBackend()
    for info, dev in opencl_devices():
        if info.key == key:
            from .opencl import OpenCLBackend

            return OpenCLBackend(info, dev)
    raise DeviceError(f"device {key!r} is not available; available: {available_keys()}")


def get_backend(spec: str | Backend | None = None) -> Backend:
    """The backend for ``spec``: "numpy", "opencl", "opencl:<p>:<d>", "auto" or None.

    None reads the ``MAO_LAB_DEVICE`` environment variable and falls back to "numpy".
    "auto" picks the device with the highest calibrated GEMM GFLOP/s. Backends are
    created once per key and shared.
    """
    if isinstance(spec, Backend):
        return spec
    if spec is None:
        spec = os.environ.get("MAO_LAB_DEVICE", "").strip() or "numpy"
    if not isinstance(spec, str):
        raise DeviceError(f"device must be a string or a Backend; received {spec!r}")
    s = spec.strip().lower()
    if s == "auto":
        key = devices(calibrated=True).best().key
    elif s == "numpy" or s == "cpu":
        key = "numpy"
    elif s.startswith("opencl"):
        key = _resolve_opencl(s)
    else:
        raise DeviceError(
            f"unknown device {spec!r}; expected 'numpy', 'opencl', 'opencl:<platform>:"
            f"<device>' or 'auto'; available here: {available_keys()}"
        )
    if key not in _BACKENDS:
        _BACKENDS[key] = _make(key)
    return _BACKENDS[key]


class DeviceList(list):
    """A list of DeviceInfo that prints as a table (terminal) and HTML (notebook)."""

    # (attribute, heading); the terminal table leaves out vendor and local memory
    COLUMNS = (("key", "key"), ("name", "name"), ("vendor", "vendor"),
               ("platform", "platform"), ("driver_version", "driver"),
               ("device_type", "type"), ("compute_units", "units"),
               ("global_mem", "memory"), ("local_mem", "local mem"), ("fp64", "fp64"),
               ("gflops", "GFLOP/s"))
    TERMINAL = ("key", "name", "platform", "driver_version", "device_type", "compute_units",
                "global_mem", "fp64", "gflops")

    @staticmethod
    def _cell(d: DeviceInfo, attr: str) -> str:
        v = getattr(d, attr)
        if attr in ("global_mem", "local_mem"):
            if not v:
                return "-"
            return f"{v / 2**30:.1f} GiB" if v >= 2**30 else f"{v / 2**10:.0f} KiB"
        if attr == "gflops":
            return "-" if v is None else f"{v:.1f}"
        if attr == "fp64":
            return "yes" if v else "no"
        return str(v)

    def _table(self, attrs) -> list[list[str]]:
        heads = dict(self.COLUMNS)
        return [[heads[a] for a in attrs]] + [[self._cell(d, a) for a in attrs] for d in self]

    def __str__(self) -> str:
        rows = self._table(self.TERMINAL)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {self.TERMINAL.index(a) for a in ("compute_units", "global_mem", "gflops")}
        lines = [
            "  ".join(c.rjust(w) if i in right else c.ljust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        errors = [f"  {d.key}: {d.extra['error']}" for d in self if d.extra.get("error")]
        if errors:
            lines += ["", "errors:"] + errors
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        rows = self._table([a for a, _ in self.COLUMNS])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>"
            for r in rows[1:]
        )
        return f'<table class="mao-devices"><tr>{head}</tr>{body}</table>'

    def best(self) -> DeviceInfo:
        """The device with the highest calibrated GFLOP/s (numpy wins ties)."""
        if not self:
            raise DeviceError("no device in this list")
        return max(self, key=lambda i: (i.gflops or 0.0, i.key == "numpy"))


def devices(calibrated: bool = True) -> DeviceList:
    """The inventory of usable devices, each with a calibrated GEMM GFLOP/s figure.

    Example:
        >>> import mao_lab
        >>> mao_lab.devices(calibrated=False)[0].key
        'numpy'
    """
    infos = [numpy_device_info()] + [info for info, _ in opencl_devices()]
    if calibrated:
        for info in infos:
            if info.key not in _GFLOPS:
                try:
                    _GFLOPS[info.key] = calibrate(get_backend(info.key))
                except Exception as exc:  # noqa: BLE001 - a broken device is reported, not fatal
                    info.extra["error"] = str(exc)
                    _GFLOPS[info.key] = 0.0
            info.gflops = _GFLOPS[info.key]
    return DeviceList(infos)
