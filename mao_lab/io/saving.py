"""Save and load models as one safetensors file: weights and optimizer state as tensors, the
architecture and compile settings as JSON in the file's metadata. Loading never unpickles
and never runs code from the file; every tensor is checked against the architecture.

Tensor names: "weights/<layer>/<param>", "optimizer/iterations",
"optimizer/<layer>/<param>/<slot>". The file opens in any safetensors reader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SerializationError

FORMAT_MODEL = "mao_lab.model"
FORMAT_WEIGHTS = "mao_lab.weights"
VERSION = "1"


def _write(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp),
              metadata=metadata)
    os.replace(tmp, path)  # a crash mid-write never leaves a half-written file at `path`


def _read(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SerializationError(f"no such model file: {str(path)!r}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt file
        raise SerializationError(f"{str(path)!r} is not a readable safetensors file "
                                 f"(corrupt or truncated?): {exc}") from None
    return tensors, meta


def _weight_tensors(model) -> dict[str, np.ndarray]:
    return {f"weights/{n}": w for n, w in zip(model.weight_names(), model.get_weights())}


def save_weights(model, path) -> None:
    """Only the weights ("weights/<layer>/<param>" tensors)."""
    model._require_built("save_weights")
    _write(path, _weight_tensors(model), {"format": FORMAT_WEIGHTS, "version": VERSION})


def save_model(model, path) -> None:
    """Architecture + compile settings (JSON metadata), weights and optimizer state."""
    meta = {"format": FORMAT_MODEL, "version": VERSION,
            "model_config": json.dumps(model.get_config())}
    tensors = _weight_tensors(model) if model.built else {}
    if model.built:
        meta["layer_state"] = json.dumps({la.name: la.runtime_state() for la in model.layers
                                          if la.runtime_state()})
    if model.compiled:
        meta["compile_config"] = json.dumps(model.get_compile_config())
        if model.built:
            opt = model.optimizer
            for n, a in zip(opt.state_names(), opt.get_state(model.backend)):
                tensors[f"optimizer/{n}"] = np.asarray(a).reshape(-1) if n == "iterations" \
                    else a
    _write(path, tensors, meta)


def _check(tensors: dict[str, np.ndarray], expected: dict[str, tuple], path, what: str):
    """Every expected tensor present with its shape and dtype; nothing extra."""
    for name, shape in expected.items():
        if name not in tensors:
            raise SerializationError(f"{str(path)!r}: tensor {name!r} is missing (the "
                                     f"architecture expects shape {shape})")
        got = tuple(tensors[name].shape)
        if got != tuple(shape):
            raise SerializationError(
                f"{str(path)!r}: tensor {name!r} has shape {got} but the architecture expects "
                f"{tuple(shape)}")
        if tensors[name].dtype.kind != "f" and name != "optimizer/iterations":
            raise SerializationError(f"{str(path)!r}: tensor {name!r} has dtype "
                                     f"{tensors[name].dtype}; expected a float dtype")
    extra = sorted(k for k in tensors if k.startswith(what) and k not in expected)
    if extra:
        raise SerializationError(f"{str(path)!r}: tensors {extra[:5]} do not belong to the "
                                 "architecture (a file for a different model?)")


def load_weights(model, path) -> None:
    """Load the weights of a save_weights or save file into ``model`` (all or nothing)."""
    model._require_built("load_weights")
    tensors, _ = _read(path)
    expected = {f"weights/{n}": tuple(s) for n, s in zip(
        model.weight_names(), [a.shape for la in model.layers
                               for a in list(la.params.values()) + list(la.state.values())])}
    _check(tensors, expected, path, "weights/")
    model.set_weights([tensors[k] for k in expected])


def _json(meta: dict[str, str], key: str, path) -> Any:
    try:
        return json.loads(meta[key])
    except (KeyError, json.JSONDecodeError) as exc:
        raise SerializationError(f"{str(path)!r}: metadata {key!r} is missing or not valid "
                                 f"JSON ({exc})") from None


def load_model(path, device=None):
    """Rebuild a model saved with ``model.save(path)``: architecture, weights, optimizer.

    Example:
        >>> import mao_lab  # doctest: +SKIP
        >>> model = mao_lab.load_model("iris.safetensors")  # doctest: +SKIP
    """
    from ..model import Sequential

    tensors, meta = _read(path)
    if meta.get("format") != FORMAT_MODEL:
        raise SerializationError(f"{str(path)!r} is not a mao_lab model file (format "
                                 f"{meta.get('format')!r}; expected {FORMAT_MODEL!r}); weights "
                                 "files load with model.load_weights(path)")
    try:
        model = Sequential.from_config(_json(meta, "model_config", path))
        if "compile_config" in meta:
            model.compile_from_config(_json(meta, "compile_config", path))
    except SerializationError:
        raise
    except Exception as exc:  # noqa: BLE001 - a config that does not rebuild is a bad file
        raise SerializationError(f"{str(path)!r}: the architecture in the file does not "
                                 f"rebuild: {exc}") from None
    if model.built:
        load_weights(model, path)
        for name, st in (_json(meta, "layer_state", path) if "layer_state" in meta
                         else {}).items():
            if not isinstance(st, dict) or name not in [la.name for la in model.layers]:
                raise SerializationError(f"{str(path)!r}: layer_state names unknown layer "
                                         f"{name!r}")
            model.get_layer(name).set_runtime_state(st)
        if model.compiled:
            opt = model.optimizer
            shapes = {"optimizer/iterations": (1,)}
            shapes.update({f"optimizer/{n}": tuple(a.shape) for n, a in zip(
                opt.state_names()[1:], opt.get_state(model.backend)[1:])})
            _check(tensors, shapes, path, "optimizer/")
            state = [tensors[k] for k in shapes]
            state[0] = np.asarray(state[0]).reshape(())
            opt.set_state(state, model.backend)
    if device is not None:
        model.to(device)
    return model
