"""Layer inspection computed on the kernel side: weight/gradient histograms and norms, and
the activations of one input sample (feature maps for conv layers, unit bars for dense).

Activations run on numpy copies of the layers, so inspecting never disturbs the caches of
a model that is training in another thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError

MAX_MAPS = 16  # feature maps shown per conv layer
MAX_UNITS = 128  # bars shown per dense layer
MAX_MAP_SIDE = 32  # larger maps are subsampled


def histogram(values: np.ndarray, bins: int = 24) -> dict[str, Any]:
    """Histogram and summary of an array, JSON-ready.

    Example:
        >>> h = histogram(np.array([0.0, 1.0, 1.0]), bins=2)
        >>> h["counts"], h["norm"] == np.sqrt(2.0)
        ([1, 2], True)
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return {"counts": [], "edges": [], "norm": 0.0, "mean": 0.0, "std": 0.0,
                "min": 0.0, "max": 0.0, "size": 0}  # fmt: skip
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
    return {
        "counts": [int(c) for c in counts], "edges": [float(e) for e in edges],
        "norm": float(np.linalg.norm(finite)), "mean": float(finite.mean()) if finite.size else 0.0,
        "std": float(finite.std()) if finite.size else 0.0, "min": lo, "max": hi,
        "size": int(v.size), "nonfinite": int(v.size - finite.size),
    }  # fmt: skip


def _host(layer: Any, arr: Any) -> np.ndarray:
    be = getattr(layer, "be", None)
    return np.asarray(be.to_host(arr) if be is not None else arr)


def _find(model: Any, name: str) -> tuple[int, Any]:
    for i, layer in enumerate(model.layers):
        if layer.name == name:
            return i, layer
    raise ConfigError(f"no layer named {name!r}; layers: {[la.name for la in model.layers]}")


def activations(model: Any, name: str, sample: np.ndarray) -> np.ndarray:
    """Output of layer ``name`` for one input ``sample`` (no batch dim), via numpy copies.

    Returns the activation without the batch dim, e.g. (C, H, W) for a conv layer.
    """
    from ..layers import deserialize, serialize

    index, _ = _find(model, name)
    x = np.asarray(sample, dtype=np.float32)[None]
    for layer in model.layers[: index + 1]:
        clone = deserialize(serialize(layer))
        clone.build(tuple(x.shape[1:]))
        if layer.built:
            clone.set_weights(layer.get_weights())
        x = np.asarray(clone.be.to_host(clone.forward(clone.be.asarray(x), training=False)))
    return x[0]


def _activation_view(act: np.ndarray) -> dict[str, Any]:
    if act.ndim == 3:  # (C, H, W): feature maps, each scaled to [0, 1] for drawing
        c, h, w = act.shape
        step = max(1, int(np.ceil(max(h, w) / MAX_MAP_SIDE)))
        maps = []
        for m in act[:MAX_MAPS, ::step, ::step]:
            lo, hi = float(m.min()), float(m.max())
            scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
            maps.append({"data": np.round(scaled, 3).ravel().tolist(), "min": lo, "max": hi})
        sub_h, sub_w = act[0, ::step, ::step].shape
        return {"kind": "maps", "channels": int(c), "h": int(sub_h), "w": int(sub_w),
                "maps": maps}
    flat = act.ravel()
    return {"kind": "bars", "units": int(flat.size),
            "values": [float(v) for v in flat[:MAX_UNITS]]}  # fmt: skip


def layer_inspection(model: Any, name: str, sample: np.ndarray | None = None) -> dict[str, Any]:
    """Everything the inspector shows for layer ``name``.

    Returns:
        ``{"layer", "class_name", "weights": {param: histogram}, "grads": {param: histogram},
        "activations": {"kind": "maps"|"bars", ...} | None}``.
    """
    _, layer = _find(model, name)
    out: dict[str, Any] = {"layer": name, "class_name": type(layer).__name__,
                           "weights": {}, "grads": {}, "activations": None}  # fmt: skip
    for key, arr in {**layer.params, **getattr(layer, "state", {})}.items():
        out["weights"][key] = histogram(_host(layer, arr))
    for key, arr in getattr(layer, "grads", {}).items():
        out["grads"][key] = histogram(_host(layer, arr))
    if sample is not None:
        out["activations"] = _activation_view(activations(model, name, sample))
    return out
