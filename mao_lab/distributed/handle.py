"""The handle of a running data-parallel fit: progress, per-engine metrics, history, stop().

The coordinator thread writes; the notebook (and the widgets) read. Reads never block.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import ClusterError


class TrainingHandle:
    """What ``DataParallel.fit(..., block=False)`` returns.

    Attributes (all safe to read while training runs):
        progress: epoch, epochs, step, samples_done, samples_total, samples_per_s.
        metrics: engine id -> latest metrics (device, share, local_batch, samples_per_s,
            compute_s / comm_s / wait_s per step, cpu_percent, rss, loss).
        history: epoch logs, ``history["loss"]`` a list over epochs (as Keras).
        shares: engine id -> current share of the global batch.
        edits: live edits seen, each with ``requested_step`` and ``applied_step`` (None while
            pending).
        events: engine losses, rebalances and edits, in order.

    Example:
        >>> h = dp.fit(x, y, epochs=5, block=False)   # doctest: +SKIP
        >>> h.progress["epoch"], h.done              # doctest: +SKIP
        >>> h.stop(); h.wait()                        # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.progress: dict[str, Any] = {"epoch": 0, "epochs": 0, "step": 0, "samples_done": 0,
                                         "samples_total": 0, "samples_per_s": None}
        self.metrics: dict[int, dict[str, Any]] = {}
        self.history: dict[str, list[float]] = {}
        self.shares: dict[int, float] = {}
        self.edits: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.result: Any = None
        self._listeners: list[Callable[[str, dict], None]] = []

    # ------------------------------------------------------------------ reading
    @property
    def done(self) -> bool:
        """True once training finished, stopped or failed."""
        return self._done.is_set()

    @property
    def running(self) -> bool:
        return not self.done

    @property
    def pending_edits(self) -> list[dict[str, Any]]:
        """Edits seen on the client but not yet applied on the engines."""
        with self._lock:
            return [dict(e) for e in self.edits if e["applied_step"] is None]

    def snapshot(self) -> dict[str, Any]:
        """A consistent deep copy of progress, metrics, shares, history and edits."""
        with self._lock:
            return copy.deepcopy({"progress": self.progress, "metrics": self.metrics,
                                  "shares": self.shares, "history": self.history,
                                  "edits": self.edits, "events": self.events,
                                  "done": self.done, "error": repr(self.error)
                                  if self.error else None})

    def subscribe(self, callback: Callable[[str, dict], None]) -> Callable[[], None]:
        """Call ``callback(kind, data)`` on "metrics", "epoch", "event" and "done".

        Called from the training thread: keep callbacks short (the widgets only copy state).
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask training to stop at the next sync boundary (returns at once)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until training ends; returns the History or re-raises the training error.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s "
                               f"(epoch {self.progress['epoch']}, step {self.progress['step']})")
        if self.error is not None:
            raise self.error
        return self.result

    def __repr__(self) -> str:
        p = self.progress
        state = "done" if self.done else "running"
        if self.error is not None:
            state = f"failed: {self.error}"
        return (f"<TrainingHandle {state}: epoch {p['epoch']}/{p['epochs']}, step {p['step']}, "
                f"{p['samples_done']}/{p['samples_total']} samples>")

    # ------------------------------------------------------------------ writing (trainer)
    def _emit(self, kind: str, data: dict) -> None:
        for cb in list(self._listeners):
            try:
                cb(kind, data)
            except Exception:  # noqa: BLE001 - a broken listener must not stop training
                pass

    def _update(self, **fields: Any) -> None:
        with self._lock:
            for k, v in fields.items():
                cur = getattr(self, k)
                if isinstance(cur, dict) and isinstance(v, dict) and k != "shares":
                    cur.update(v)
                else:
                    setattr(self, k, v)

    def _event(self, kind: str, **info: Any) -> None:
        ev = {"type": kind, "time": time.time(), "step": self.progress["step"], **info}
        with self._lock:
            self.events.append(ev)
        self._emit("event", ev)

    def _finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self._done.set()
        self._emit("done", {"error": repr(error) if error else None})

    def _start(self, target: Callable[[], Any]) -> None:
        def main() -> None:
            try:
                result = target()
            except BaseException as exc:  # noqa: BLE001 - surfaced by wait()
                if not isinstance(exc, Exception):  # e.g. SystemExit inside a callback
                    exc = ClusterError(f"training thread ended: {exc!r}")
                self._finish(error=exc)
            else:
                self._finish(result=result)

        self._thread = threading.Thread(target=main, name="mao-data-parallel", daemon=True)
        self._thread.start()
