"""Apply live edits to the model and, while a distributed fit runs, track them from
"pending" to "applied at step N" through the training handle's ``edits`` list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_HIDDEN = {"requested_step", "applied_step", "time", "id"}


def _running(handle: Any) -> bool:
    if handle is None:
        return False
    flag = getattr(handle, "running", False)
    return bool(flag() if callable(flag) else flag)


def describe(op: str, args: tuple, kwargs: dict) -> str:
    """Short human text of an edit, e.g. ``edit dense_1 units=64``."""
    parts = [op]
    parts += [getattr(a, "name", None) or repr(a) for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return " ".join(str(p) for p in parts)


def pending_rows(edits: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Rows for the browser from a training handle's edit records.

    Example:
        >>> pending_rows([{"kind": "edit", "layer": "d1", "requested_step": 3,
        ...                "applied_step": None}])[0]["status"]
        'pending'
    """
    rows = []
    for i, e in enumerate(edits[-limit:]):
        applied = e.get("applied_step")
        text = " ".join(str(v) for k, v in e.items() if k not in _HIDDEN and v not in (None, ""))
        if e.get("requested_step") is not None:
            text = f"{text or 'edit'} (requested at step {e['requested_step']})"
        rows.append({"edit": i, "text": text or "edit", "requested_step": e.get("requested_step"),
                     "step": applied, "status": "pending" if applied is None else "applied",
                     "error": str(e.get("error") or "")})  # fmt: skip
        if e.get("error"):
            rows[-1]["status"] = "failed"
    return rows


class EditRunner:
    """Applies edits with ``getattr(model, op)(*args, **kwargs)`` (atomic in the model).

    With a training ``handle`` (``mao_lab.distributed.TrainingHandle`` or anything with
    ``running``, an ``edits`` list of {..., "requested_step", "applied_step"} and optionally
    ``subscribe(callback)``), the trainer picks the edit up from the model and applies it
    on every engine at the next sync boundary; ``on_change(rows)`` receives the tracked
    edits each time one is requested or applied.
    """

    def __init__(self, model: Any, handle: Any = None,
                 on_change: Callable[[list[dict[str, Any]]], None] | None = None,
                 poll: float = 0.25) -> None:  # fmt: skip
        self.model = model
        self.on_change = on_change or (lambda _rows: None)
        self.poll = poll
        self.handle: Any = None
        self._unsubscribe: Callable[[], Any] | None = None
        self._watcher: threading.Thread | None = None
        if handle is not None:
            self.attach(handle)

    def attach(self, handle: Any) -> None:
        """Track edits through ``handle`` (replaces a previous one)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.handle = handle
        if hasattr(handle, "subscribe"):
            self._unsubscribe = handle.subscribe(lambda kind, _data: self.check())
        self.check()

    def run(self, op: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Apply one edit; returns ``{"status": "applied"|"pending", "message"}``."""
        text = describe(op, args, kwargs)
        getattr(self.model, op)(*args, **kwargs)
        if _running(self.handle):
            self.check()
            self._ensure_watcher()
            return {"status": "pending", "message": f"{text}: pending until the next sync"}
        return {"status": "applied", "message": f"{text}: applied"}

    def check(self) -> bool:
        """Publish the handle's edit records; True while some are pending."""
        if self.handle is None:
            return False
        edits = list(getattr(self.handle, "edits", []) or [])
        rows = pending_rows([dict(e) for e in edits])
        self.on_change(rows)
        return any(r["status"] == "pending" for r in rows) and _running(self.handle)

    def _ensure_watcher(self) -> None:
        if self._watcher is not None and self._watcher.is_alive():
            return
        stop = threading.Event()

        def watch() -> None:  # a fallback for handles without subscribe()
            while not stop.wait(self.poll):
                try:
                    if not self.check():
                        return
                except Exception:  # a broken handle must not kill this thread silently
                    log.exception("tracking pending edits failed")
                    return

        self._watcher = threading.Thread(target=watch, name="mao-edit-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
