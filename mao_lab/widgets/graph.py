"""ModelGraph: draws ``model.graph`` and edits the model live (the editor panel and requests).

Python is the single source of truth: nodes, edges, layout and editor fields are traits
computed here; the browser sends requests ``{"id", "action", ...}`` and gets a reply
``{"type": "reply", "id", "ok", "error", "field", "status"}`` (also kept in ``last_reply``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import anywidget
import traitlets as t

from ..errors import ConfigError, EditError, MaoLabError
from ._bundle import bundle
from ._edits import EditRunner
from ._fields import INSERTABLE, field_specs, guess_field, parse_field, parse_values
from ._layout import layered_layout
from ._static import add_html, graph_svg
from .inspect import layer_inspection

log = logging.getLogger(__name__)


def fmt_shape(shape: Any) -> str:
    """``(6, 28, 28)`` for a shape without the batch dim; ``?`` when unknown."""
    if shape is None:
        return "?"
    dims = ["?" if s is None else str(s) for s in tuple(shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def graph_state(model: Any, rows: int = 8) -> dict[str, Any]:
    """Nodes (with boxes), edges (with routes and shape labels) and canvas size of a model.

    Example:
        >>> import mao_lab
        >>> m = mao_lab.Sequential([mao_lab.layers.Dense(3)], input_shape=(4,))
        >>> [n["id"] for n in graph_state(m)["nodes"]][1:] == [m.layers[0].name]
        True
    """
    g = model.graph
    labels = {(u, v): fmt_shape(d.get("shape")) for u, v, d in g.edges(data=True)}
    lay = layered_layout(g, rows=rows, edge_labels=labels)
    nodes = []
    for name, d in g.nodes(data=True):
        x, y, w, h = lay.boxes[name]
        nodes.append({
            "id": str(name), "index": int(d.get("index", -1)),
            "class_name": str(d.get("class_name") or ("Input" if name == "input" else "?")),
            "output_shape": fmt_shape(d.get("output_shape")),
            "params": int(d.get("params") or 0), "device": str(d.get("device") or ""),
            "x": x, "y": y, "w": w, "h": h,
        })  # fmt: skip
    nodes.sort(key=lambda n: (n["index"], n["id"]))
    size = {"width": lay.width, "height": lay.height}
    return {"nodes": nodes, "edges": lay.edges, "size": size}


class ModelGraph(anywidget.AnyWidget):
    """The model's layer graph with a click-to-edit panel, insert/remove/undo and inspection.

    Args:
        model: a ``mao_lab.Sequential`` (anything with the live-edit API and ``graph``).
        samples: optional inputs ``(N, *input_shape)``; the selected layer's activations for
            ``samples[sample_index]`` are shown.
        handle: optional ``TrainingHandle`` of a non-blocking distributed fit; while it runs,
            edits show as pending until the engines applied them at a step.
        rows: layers per column before the layout wraps into the next column.

    Example:
        >>> g = ModelGraph(model)  # display(g) in a notebook; click a node to edit it
    """

    _esm = bundle("util.js", "graph_draw.js", "graph_editor.js", "graph_inspect.js", "graph.js")
    _css = bundle("common.css", "graph.css")

    nodes = t.List(t.Dict()).tag(sync=True)
    edges = t.List(t.Dict()).tag(sync=True)
    size = t.Dict().tag(sync=True)
    rows = t.Int(8).tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    selected = t.Unicode("").tag(sync=True)
    fields = t.List(t.Dict()).tag(sync=True)
    insertable = t.List(t.Unicode(), list(INSERTABLE)).tag(sync=True)
    inspection = t.Dict().tag(sync=True)
    sample_index = t.Int(0).tag(sync=True)
    num_samples = t.Int(0).tag(sync=True)
    pending = t.List(t.Dict()).tag(sync=True)
    last_reply = t.Dict().tag(sync=True)
    version = t.Int(0).tag(sync=True)  # bumped on every redraw (tests wait on it)

    def __init__(self, model: Any, samples: Any = None, handle: Any = None, rows: int = 8,
                 **kwargs: Any) -> None:  # fmt: skip
        missing = [a for a in ("graph", "observe", "edit", "layers") if not hasattr(model, a)]
        if missing:
            raise ConfigError(f"ModelGraph needs a mao_lab.Sequential (with graph, observe, edit "
                              f"and layers); received {type(model).__name__} without {missing}")
        super().__init__(rows=rows, **kwargs)
        self.model = model
        self.samples = samples
        self.num_samples = 0 if samples is None else len(samples)
        self._edits = EditRunner(model, handle, on_change=self._publish_pending)
        self._lock = threading.RLock()
        self._last_inspect = 0.0
        self._inspector: threading.Thread | None = None
        self._unsubscribe = model.observe(self._on_model_event)
        self.on_msg(self._on_custom)
        self.observe(lambda _: self._refresh_selection(), names=["selected", "sample_index"])
        self.observe(lambda _: self.refresh(), names=["rows"])
        self.refresh()

    # ---- state -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute nodes, edges, layout and the editor fields from the model."""
        with self._lock:
            state = graph_state(self.model, self.rows)
            with self.hold_sync():
                self.nodes, self.edges, self.size = state["nodes"], state["edges"], state["size"]
                self.model_name = str(getattr(self.model, "name", "") or "")
                if self.selected and self.selected not in {n["id"] for n in self.nodes}:
                    self.selected = ""
                self._refresh_selection()
                self.version += 1

    def _refresh_selection(self) -> None:
        name = self.selected
        if not name or name == "input" or name not in self.model.graph:
            self.fields, self.inspection = [], {}
            return
        self.fields = field_specs(self._config(name))
        self._inspect()

    def _inspect(self) -> None:
        self._last_inspect = time.monotonic()
        sample = None
        if self.samples is not None and self.num_samples:
            sample = self.samples[max(0, min(self.sample_index, self.num_samples - 1))]
        try:
            self.inspection = layer_inspection(self.model, self.selected, sample)
        except Exception as exc:  # inspection must never break the editor
            log.warning("inspecting layer %r failed: %s", self.selected, exc)
            self.inspection = {"layer": self.selected, "error": str(exc)}

    def _config(self, name: str) -> dict[str, Any]:
        return dict(self.model.graph.nodes[name].get("config") or {})

    def _on_model_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "weights" and "device" not in event:
            self.refresh_inspection()  # new values, same structure: only the inspector
            return
        self.refresh()

    def refresh_inspection(self, min_interval: float = 0.5, wait: bool = False) -> None:
        """Recompute the selected layer's inspection in a background thread, at most once
        per ``min_interval`` seconds (called while training runs; never blocks the caller
        unless ``wait``, which also runs it even if a refresh is in flight)."""
        if wait:
            if self._inspector is not None:
                self._inspector.join()
            with self._lock:
                if self.selected:
                    self._inspect()
            return
        if not self.selected or time.monotonic() - self._last_inspect < min_interval:
            return
        if self._inspector is not None and self._inspector.is_alive():
            return
        self._last_inspect = time.monotonic()

        def work() -> None:
            with self._lock:
                if self.selected:
                    self._inspect()

        self._inspector = threading.Thread(target=work, name="mao-inspect", daemon=True)
        self._inspector.start()

    def _publish_pending(self, pending: list[dict[str, Any]]) -> None:
        self.pending = pending

    def attach(self, handle: Any) -> None:
        """Track edits through a running distributed fit's ``TrainingHandle``."""
        self._edits.attach(handle)

    def close(self) -> None:
        """Stop observing the model and close the widget."""
        if getattr(self, "_edits", None) is not None:  # absent when __init__ refused the model
            self._edits.close()
        if getattr(self, "_unsubscribe", None) is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view, plus a static HTML snapshot for nbconvert and docs."""
        snapshot = graph_svg(self.nodes, self.edges, self.size, self.model_name)
        return add_html(super()._repr_mimebundle_(**kwargs), snapshot)

    # ---- requests from the browser -----------------------------------------------------
    def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        reply = self.handle_request(content)
        self.last_reply = reply
        self.send(reply)

    def handle_request(self, req: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply one request; return the reply (never raises).

        Actions: ``edit`` {layer, values}, ``insert`` {after, class_name, values?},
        ``remove`` {layer}, ``undo`` {}.
        """
        rid, action = req.get("id"), req.get("action")
        handlers = {"edit": self._edit, "insert": self._insert, "remove": self._remove,
                    "undo": self._undo}  # fmt: skip
        base = {"type": "reply", "id": rid, "action": action}
        if action not in handlers:
            return {**base, "ok": False, "field": None,
                    "error": f"unknown action {action!r}; expected one of {sorted(handlers)}"}
        try:
            extra = handlers[action](req) or {}
        except MaoLabError as exc:
            return {**base, "ok": False, "error": str(exc), "field": getattr(exc, "field", None)}
        except Exception as exc:  # a bug or an unexpected failure: still answer the browser
            log.exception("widget request %r failed", req)
            return {**base, "ok": False, "error": f"{type(exc).__name__}: {exc}", "field": None}
        self.refresh()
        return {**base, "ok": True, "error": "", "field": None, **extra}

    def _layer_name(self, req: dict[str, Any], key: str) -> str:
        name = req.get(key)
        if not isinstance(name, str) or name not in self.model.graph or name == "input":
            known = [n for n in self.model.graph.nodes if n != "input"]
            raise _FieldError(f"no layer named {name!r}; layers: {known}", None)
        return name

    def _edit(self, req: dict[str, Any]) -> dict[str, Any]:
        name = self._layer_name(req, "layer")
        config = self._config(name)
        changes, errors = parse_values(config, dict(req.get("values") or {}))
        if errors:
            field = next(iter(errors))
            raise _FieldError(errors[field], field)
        if not changes:
            return {"status": "unchanged", "message": "nothing to change"}
        try:
            return self._edits.run("edit", name, **changes)
        except EditError as exc:
            raise _FieldError(str(exc), guess_field(str(exc), list(changes))) from exc

    def _insert(self, req: dict[str, Any]) -> dict[str, Any]:
        after = req.get("after")
        names = [layer.name for layer in self.model.layers]
        if after != "input" and after not in names:
            raise _FieldError(f"cannot insert after {after!r}; layers: ['input', *{names}]", None)
        cls = req.get("class_name")
        if cls not in INSERTABLE:
            raise _FieldError(f"cannot insert {cls!r}; choose one of {list(INSERTABLE)}", None)
        config = dict(INSERTABLE[cls])
        specs = {s["name"]: s for s in field_specs(config)}
        for key, raw in dict(req.get("values") or {}).items():
            if key in specs:
                config[key] = parse_field(specs[key], raw)
        from ..layers import deserialize

        layer = deserialize({"class_name": cls, "config": config})
        index = 0 if after == "input" else names.index(after) + 1
        return self._edits.run("insert", index, layer)

    def _remove(self, req: dict[str, Any]) -> dict[str, Any]:
        name = self._layer_name(req, "layer")
        out = self._edits.run("remove", name)
        if self.selected == name:
            self.selected = ""
        return out

    def _undo(self, _req: dict[str, Any]) -> dict[str, Any]:
        return self._edits.run("undo")


class _FieldError(EditError):
    """An edit refused before or by the model, tied to one editor field (or None)."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field
