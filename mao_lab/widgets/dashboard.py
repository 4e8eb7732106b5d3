"""TrainingDashboard: live loss/metric curves (train and validation), progress, ETA and a stop
button, fed by a ``mao_lab.callbacks.Callback`` so single-process ``fit`` drives it too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anywidget
import traitlets as t

from ..callbacks import Callback
from ..errors import ConfigError
from ._bundle import bundle
from ._static import add_html, curves_svg

MAX_POINTS = 400  # per series sent to the browser


def downsample(points: list[list[float]], limit: int = MAX_POINTS) -> list[list[float]]:
    """Keep at most ``limit`` points, evenly spaced, always including the last one.

    Example:
        >>> downsample([[i, i] for i in range(10)], 4)
        [[0, 0], [3, 3], [6, 6], [9, 9]]
    """
    if limit < 2:
        raise ConfigError(f"limit must be >= 2; received limit={limit!r}")
    n = len(points)
    if n <= limit:
        return [list(p) for p in points]
    idx = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    return [list(points[i]) for i in idx]


def eta_seconds(elapsed: float, done: float) -> float | None:
    """Remaining time if the pace so far holds; None before any progress."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (1.0 - min(done, 1.0)) / done)


class DashboardCallback(Callback):
    """Feeds a TrainingDashboard from ``fit``'s batch and epoch logs."""

    def __init__(self, dashboard: TrainingDashboard) -> None:
        self.dashboard = dashboard

    def on_train_begin(self, logs=None):
        self.dashboard.begin(model=getattr(self, "model", None), **_plan(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.dashboard.epoch_begin(epoch)

    def on_batch_end(self, batch, logs=None):
        self.dashboard.batch_end(batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self.dashboard.epoch_end(epoch, logs or {})

    def on_train_end(self, logs=None):
        self.dashboard.end()


def _plan(logs: dict | None) -> dict[str, Any]:
    logs = logs or {}
    # A distributed fit passes its engines and numbers batches by global step.
    return {"epochs": int(logs.get("epochs") or 1), "steps": logs.get("steps"),
            "global_steps": "engines" in logs}


class TrainingDashboard(anywidget.AnyWidget):
    """Live curves for ``fit``: pass ``dash.callback()`` in ``callbacks=[...]``.

    Example:
        >>> dash = TrainingDashboard()
        >>> model.fit(x, y, epochs=5, callbacks=[dash.callback()])  # doctest: +SKIP
    """

    _esm = bundle("util.js", "dashboard.js")
    _css = bundle("common.css", "dashboard.css")

    series = t.Dict().tag(sync=True)  # name -> [[global_step, value], ...]
    progress = t.Dict().tag(sync=True)
    status = t.Unicode("idle").tag(sync=True)  # idle | training | stopping | done

    def __init__(self, max_rate: float = 4.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_interval = 1.0 / float(max_rate)
        self._series: dict[str, list[list[float]]] = {}
        self._lock = threading.Lock()
        self._last_push = 0.0
        self._model: Any = None
        self._handle: Any = None
        self.epochs, self.steps, self.epoch, self._t0 = 1, None, 0, 0.0
        self.global_steps = False
        self.on_msg(self._on_custom)

    def callback(self) -> DashboardCallback:
        """A Callback to pass to ``fit`` (or to a distributed trainer)."""
        return DashboardCallback(self)

    def attach(self, handle: Any) -> None:
        """Let the stop button also stop a non-blocking training ``handle`` (``stop()``)."""
        self._handle = handle

    # ---- feed --------------------------------------------------------------------------
    def begin(self, model: Any = None, epochs: int = 1, steps: int | None = None,
              global_steps: bool = False) -> None:
        """Training starts: reset curves and progress. ``global_steps``: ``batch`` in
        ``batch_end`` counts steps since the start of training (not within the epoch)."""
        self.global_steps = global_steps
        with self._lock:
            self._model, self.epochs, self.steps, self.epoch = model, epochs, steps, 0
            self._series, self._t0 = {}, time.monotonic()
        self.status = "training"
        self._push(force=True, batch=0)

    def epoch_begin(self, epoch: int) -> None:
        self.epoch = epoch

    def _step(self, epoch: int, batch: int) -> int:
        if self.global_steps:
            return batch
        return epoch * int(self.steps or 0) + batch + 1

    def batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        """One batch done: append training values (running epoch means from ``fit``)."""
        x = self._step(self.epoch, batch)
        with self._lock:
            for key, value in logs.items():
                if key in ("size", "batch") or isinstance(value, bool) or not isinstance(
                        value, (int, float)):
                    continue
                self._series.setdefault(key, []).append([x, float(value)])
        self._push(batch=batch)

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Epoch done: validation values (``val_*``) get a point at this step."""
        if self.global_steps:
            x = (epoch + 1) * int(self.steps or 1)
        else:
            x = self._step(epoch, int(self.steps or 1) - 1) if self.steps else epoch + 1
        with self._lock:
            for key, value in logs.items():
                if key.startswith("val_") and isinstance(value, (int, float)):
                    self._series.setdefault(key, []).append([x, float(value)])
        self._push(force=True, batch=int(self.steps or 1) - 1, epoch_done=epoch + 1)

    def end(self) -> None:
        self.status = "done"
        self._push(force=True, batch=int(self.steps or 1) - 1, epoch_done=self.epochs)

    def _push(self, force: bool = False, batch: int = 0, epoch_done: int | None = None) -> None:
        now = time.monotonic()
        if not force and now - self._last_push < self.min_interval:
            return
        self._last_push = now
        total = self.epochs * int(self.steps or 0)
        done_steps = self._step(self.epoch, batch) if self.steps else 0
        if self.global_steps and self.steps:
            batch = max(0, done_steps - self.epoch * int(self.steps) - 1)
        if epoch_done is not None and self.steps:
            done_steps = epoch_done * int(self.steps)
        elapsed = now - self._t0 if self._t0 else 0.0
        frac = done_steps / total if total else 0.0
        with self._lock:
            series = {k: downsample(v) for k, v in self._series.items()}
        with self.hold_sync():
            self.series = series
            self.progress = {"epoch": self.epoch + 1, "epochs": self.epochs, "batch": batch + 1,
                             "steps": self.steps, "fraction": frac, "elapsed": elapsed,
                             "eta": eta_seconds(elapsed, frac)}  # fmt: skip

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view, plus a static HTML snapshot for nbconvert and docs."""
        return add_html(super()._repr_mimebundle_(**kwargs), curves_svg(self.series))

    # ---- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask training to stop cleanly (at the end of the current epoch or sync round)."""
        if self._model is not None:
            self._model.stop_training = True
        if self._handle is not None and hasattr(self._handle, "stop"):
            self._handle.stop()
        if self.status == "training":
            self.status = "stopping"

    def _on_custom(self, _w: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("action") == "stop":
            self.stop()
            self.send({"type": "reply", "id": content.get("id"), "ok": True,
                       "status": self.status})  # fmt: skip
