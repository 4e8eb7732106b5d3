"""EngineMonitor: one row per engine (status, CPU/memory, samples/s sparkline, batch share,
compute/communication/waiting split, straggler flag), fed by ``update(engines=[...])``.

The feed is plain Python so any trainer can drive it; ``watch(handle)`` polls a running
distributed training handle. Aggregation is pure (``engine_rows``) and unit-tested.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import anywidget
import traitlets as t

from ..errors import ConfigError
from ._bundle import bundle
from ._static import add_html, engines_table

HISTORY = 40  # samples/s points kept per engine for the sparkline
STRAGGLER_RATIO = 0.7  # flag when an engine delivers < 70% of the throughput its share predicts
STATUSES = ("idle", "training", "dead")
# Keys an engine report may carry (the worker's published metrics use the same names).
KEYS = {
    "id", "engine", "host", "device", "vendor", "status", "step", "local_batch", "share",
    "samples", "samples_per_s", "compute_s", "comm_s", "wait_s", "loss", "cpu_percent", "rss",
    "mem_total", "mem_percent", "time", "error",
}  # fmt: skip


def engine_rows(engines: dict[int, dict[str, Any]], history: dict[int, deque],
                now: float) -> list[dict[str, Any]]:  # fmt: skip
    """Rows for the browser: shares, memory fraction, status age, straggler flags.

    Args:
        engines: merged latest report per engine id (see ``EngineMonitor.update``).
        history: samples/s history per engine id.
        now: the current time (seconds since the epoch) for "since" ages.

    Example:
        >>> rows = engine_rows({0: {"id": 0, "samples_per_s": 90.0, "local_batch": 32},
        ...                     1: {"id": 1, "samples_per_s": 10.0, "local_batch": 32}}, {}, 0)
        >>> [r["straggler"] for r in rows], [r["share"] for r in rows]
        ([False, True], [0.5, 0.5])
    """
    live = {i: e for i, e in engines.items() if e.get("status") != "dead"}
    batches = {i: float(e.get("local_batch") or 0) for i, e in live.items()}
    total_batch = sum(batches.values())
    speeds = {i: float(e.get("samples_per_s") or 0) for i, e in live.items()}
    total_speed = sum(speeds.values())
    rss_top = max((float(e.get("rss") or 0) for e in engines.values()), default=0.0)
    rows = []
    for i in sorted(engines):
        e = engines[i]
        share = e.get("share")
        if share is None:
            share = batches.get(i, 0.0) / total_batch if total_batch else None
        straggler = False
        if i in live and share and total_speed > 0 and len(live) > 1:
            straggler = speeds[i] / total_speed < STRAGGLER_RATIO * float(share)
        mem = e.get("mem_percent")
        if mem is not None:
            mem_frac = float(mem) / 100.0
        elif e.get("rss") and e.get("mem_total"):
            mem_frac = float(e["rss"]) / float(e["mem_total"])
        else:  # relative to the largest engine when totals are unknown
            mem_frac = float(e.get("rss") or 0) / rss_top if rss_top else None
        rows.append({
            "id": i, "host": str(e.get("host") or "?"), "device": str(e.get("device") or "?"),
            "vendor": str(e.get("vendor") or ""), "status": e.get("status", "idle"),
            "age_s": max(0.0, now - float(e.get("since", now))), "step": e.get("step"),
            "cpu": e.get("cpu_percent"), "mem": mem_frac, "rss": e.get("rss"),
            "samples_per_s": e.get("samples_per_s"), "history": list(history.get(i, ())),
            "share": None if share is None else round(float(share), 6),
            "compute_s": e.get("compute_s"), "comm_s": e.get("comm_s"),
            "wait_s": e.get("wait_s"), "straggler": bool(straggler),
            "loss": e.get("loss"), "error": str(e.get("error") or ""),
        })  # fmt: skip
    return rows


class EngineMonitor(anywidget.AnyWidget):
    """Per-engine utilization rows; call ``update(engines=[...])`` from any thread.

    Args:
        max_rate: most pushes to the browser per second (extra updates are merged).

    Example:
        >>> mon = EngineMonitor()
        >>> mon.update(engines=[{"id": 0, "host": "a", "device": "numpy", "status": "training",
        ...                      "samples_per_s": 1200.0, "local_batch": 64}])
        >>> mon.flush(); mon.rows[0]["share"]
        1.0
    """

    _esm = bundle("util.js", "monitor.js")
    _css = bundle("common.css", "monitor.css")

    rows = t.List(t.Dict()).tag(sync=True)
    title = t.Unicode("Engines").tag(sync=True)
    updated = t.Float(0.0).tag(sync=True)

    def __init__(self, max_rate: float = 4.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not max_rate > 0:
            raise ConfigError(f"max_rate must be > 0 updates per second; received {max_rate!r}")
        self.min_interval = 1.0 / float(max_rate)
        self._engines: dict[int, dict[str, Any]] = {}
        self._history: dict[int, deque] = {}
        self._lock = threading.Lock()
        self._last_push = 0.0
        self._timer: threading.Timer | None = None
        self._watcher: threading.Thread | None = None
        self._stop_watch = threading.Event()
        self._unsub: Any = None

    def update(self, engines: list[dict[str, Any]]) -> None:
        """Merge engine reports (by ``id``, or ``engine``) and push at most ``max_rate`` Hz.

        Each report may hold: host, device, vendor, status ("idle" | "training" | "dead"),
        step, local_batch or share, samples_per_s, compute_s, comm_s, wait_s (seconds per
        step), cpu_percent, rss (bytes), mem_total or mem_percent, loss, error. Engines never
        reported again keep their last row; a "dead" engine stays visible, marked.
        """
        now = time.time()
        with self._lock:
            for report in engines:
                self._merge(dict(report), now)
        self._schedule()

    def _merge(self, report: dict[str, Any], now: float) -> None:
        eid = report.pop("id", report.get("engine"))
        if not isinstance(eid, int) or isinstance(eid, bool):
            raise ConfigError(f"each engine report needs an integer 'id' (or 'engine'); "
                              f"received {report!r}")  # fmt: skip
        unknown = set(report) - KEYS
        if unknown:
            raise ConfigError(f"engine {eid}: unknown report keys {sorted(unknown)}; "
                              f"expected some of {sorted(KEYS)}")  # fmt: skip
        status = report.get("status")
        if status is not None and status not in STATUSES:
            raise ConfigError(f"engine {eid}: status must be one of {STATUSES}; "
                              f"received {status!r}")  # fmt: skip
        old = self._engines.get(eid, {"id": eid, "status": "idle", "since": now})
        if status is not None and status != old.get("status"):
            old["since"] = now
        old.update({k: v for k, v in report.items() if v is not None or k == "samples_per_s"})
        if report.get("samples_per_s") is not None:
            self._history.setdefault(eid, deque(maxlen=HISTORY)).append(
                float(report["samples_per_s"]))
        self._engines[eid] = old

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view, plus a static HTML snapshot for nbconvert and docs."""
        return add_html(super()._repr_mimebundle_(**kwargs), engines_table(self.rows))

    def mark_dead(self, engine_id: int, error: str = "") -> None:
        """Mark one engine dead (it stays visible with the time it died)."""
        self.update([{"id": engine_id, "status": "dead", "error": error}])

    def _schedule(self) -> None:
        wait = self.min_interval - (time.monotonic() - self._last_push)
        if wait <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> None:
        """Push the merged state to the browser now."""
        with self._lock:
            self._timer = None
            self._last_push = time.monotonic()
            rows = engine_rows(self._engines, self._history, time.time())
        self.rows = rows
        self.updated = time.time()

    def watch(self, handle: Any, interval: float = 0.5) -> None:
        """Follow a running distributed fit's ``TrainingHandle``: per-engine ``metrics`` as
        the handle announces them, engine-loss events (the engine stays visible, marked
        dead), and a poll every ``interval`` s as a fallback and for the final state."""
        self._stop_watch.clear()
        if hasattr(handle, "subscribe"):
            self._unsub = handle.subscribe(self._on_handle)

        def loop() -> None:
            while not self._stop_watch.wait(interval):
                done = bool(getattr(handle, "done", False))
                self._poll_handle(handle, done)
                if done:
                    return

        self._watcher = threading.Thread(target=loop, name="mao-monitor-watch", daemon=True)
        self._watcher.start()

    def _report(self, eid: Any, metrics: dict[str, Any], status: str) -> dict[str, Any]:
        r = {k: v for k, v in metrics.items() if k in KEYS and k not in ("id", "engine")}
        r["id"] = int(eid)
        if self._engines.get(int(eid), {}).get("status") != "dead":
            r["status"] = status
        return r

    def _on_handle(self, kind: str, data: Any) -> None:
        # Called on the training thread for every engine report: copy, merge, return.
        if not isinstance(data, dict):
            return
        if kind == "metrics" and isinstance(data.get("engine"), int):
            self.update([self._report(data["engine"], data, "training")])
        elif kind == "event":
            self._lost([data])

    def _lost(self, events: list[dict[str, Any]]) -> None:
        reports = []
        for ev in events:
            kind = str(ev.get("type", ""))
            if ("lost" in kind or "dead" in kind) and isinstance(ev.get("engine"), int):
                reports.append({"id": ev["engine"], "status": "dead",
                                "error": str(ev.get("error") or ev.get("reason") or kind)})
        if reports:
            self.update(reports)

    def _poll_handle(self, handle: Any, done: bool) -> None:
        # snapshot(): a consistent copy taken under the handle's lock (twice a second)
        snap = handle.snapshot() if hasattr(handle, "snapshot") else {
            "metrics": dict(getattr(handle, "metrics", {}))}  # fmt: skip
        metrics = snap.get("metrics") or {}
        shares, events = snap.get("shares") or {}, snap.get("events") or []
        reports = []
        for eid, m in metrics.items():
            # the handle's shares are one plan (they sum to 1); an engine's own published
            # share may predate a rebalance, so it only fills in when the plan has none
            m = {**m, "share": shares[eid]} if shares.get(eid) is not None else m
            reports.append(self._report(eid, m, "idle" if done else "training"))
        if reports:
            self.update(reports)
        self._lost(events)
        if done:
            self.flush()

    def close(self) -> None:
        """Stop watching and close the widget."""
        self._stop_watch.set()
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        if self._timer is not None:
            self._timer.cancel()
        super().close()
