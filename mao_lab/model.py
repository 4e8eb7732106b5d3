"""Sequential: a stack of layers that builds, trains (see _training.py), edits itself live
(see _edits.py), describes itself (summary.py, ``graph``) and saves (mao_lab.io).

Example:
    >>> from mao_lab import Sequential
    >>> from mao_lab.layers import Dense
    >>> m = Sequential([Dense(30, activation="sigmoid"), Dense(3)], input_shape=(4,), seed=0)
    >>> m.count_params(), m.layers[-1].output_shape
    (243, (3,))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ._edits import EditsMixin
from ._training import TrainingMixin
from .backends import Backend, get_backend
from .errors import ConfigError, ModelError, ShapeError
from .layers import Layer, deserialize, serialize
from .layers.base import auto_name
from .summary import summary_html, summary_text

log = logging.getLogger(__name__)


def _shape(value, what: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in value)
    except TypeError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"{what} must be a non-empty tuple of positive ints without the batch "
                          f"dimension, e.g. (4,) or (1, 28, 28). Received: {value!r}")
    return shape


class Sequential(TrainingMixin, EditsMixin):
    """A linear stack of layers, Keras style, on one device.

    Args:
        layers: initial layers.
        input_shape: per-sample input shape (no batch dim); without it the model builds on
            the first ``build``/``fit``.
        name: model name.
        seed: seeds weight initialization, dropout seeds and (unless ``fit(seed=)``)
            shuffling; the same seed on the same device gives the same weights.
    """

    def __init__(self, layers: list[Layer] | None = None, input_shape=None,
                 name: str | None = None, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or seed < 0):
            raise ConfigError(f"Sequential: seed must be None or an int >= 0. Received: "
                              f"seed={seed!r}")
        self.name = name or auto_name("Sequential")
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        self.input_shape: tuple[int, ...] | None = None
        self._backend: Backend | None = None
        self._observers: list[Callable[[dict], None]] = []
        self._undo: list[dict] = []
        self._init_training()
        for layer in layers or []:
            self.add(layer)
        if input_shape is not None:
            self.build(input_shape)

    def __repr__(self) -> str:
        return f"<Sequential {self.name!r}: {len(self.layers)} layers, built={self.built}>"

    # ---- structure --------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The device backend holding the weights (MAO_LAB_DEVICE or numpy by default)."""
        if self._backend is None:
            self._backend = get_backend(None)
        return self._backend

    @property
    def built(self) -> bool:
        return self.input_shape is not None and all(la.built for la in self.layers)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.layers[-1].output_shape if self.built and self.layers else None

    def _index(self, layer: Layer | str | int) -> int:
        """Index of a layer given as object, name or index (ModelError otherwise)."""
        if isinstance(layer, bool):
            pass
        elif isinstance(layer, (int, np.integer)):
            i = int(layer)
            if -len(self.layers) <= i < len(self.layers):
                return i % len(self.layers)
            raise ModelError(f"layer index {i} is out of range for {len(self.layers)} layers")
        elif isinstance(layer, str):
            for i, la in enumerate(self.layers):
                if la.name == layer:
                    return i
            raise ModelError(f"no layer named {layer!r}; layers: "
                             f"{[la.name for la in self.layers]}")
        elif isinstance(layer, Layer):
            for i, la in enumerate(self.layers):
                if la is layer:
                    return i
            raise ModelError(f"layer {layer.name!r} is not part of model {self.name!r}")
        raise ModelError(f"a layer is given as a Layer, its name or its index; received "
                         f"{layer!r}")

    def get_layer(self, layer: str | int) -> Layer:
        return self.layers[self._index(layer)]

    def _prepare(self, layer: Layer, input_shape) -> None:
        layer.be, layer.rng = self.backend, self._rng
        layer.build(input_shape)

    def add(self, layer: Layer) -> None:
        """Append a layer (built at once when the model already has an input shape)."""
        if not isinstance(layer, Layer):
            raise ConfigError(f"Sequential.add expects a mao_lab.layers.Layer; received "
                              f"{type(layer).__name__}: {layer!r}")
        if any(la.name == layer.name for la in self.layers):
            raise ModelError(f"a layer named {layer.name!r} is already in model {self.name!r}; "
                             "pass a different name=")
        if self.input_shape is not None:
            prev = self.layers[-1].output_shape if self.layers else self.input_shape
            self._prepare(layer, prev)
        self.layers.append(layer)
        self._undo.clear()  # undo reverts live edits; add/pop/build start a fresh history
        self._structure_changed()
        self._notify("insert", index=len(self.layers) - 1, layer=layer.name)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self.layers:
            raise ModelError(f"model {self.name!r} has no layers to pop")
        layer = self.layers.pop()
        self._undo.clear()
        self._structure_changed()
        self._notify("remove", index=len(self.layers), layer=layer.name)
        return layer

    def build(self, input_shape) -> None:
        """Create every layer's weights for per-sample ``input_shape`` (no batch dim)."""
        shape = _shape(input_shape, f"{self.name}: input_shape")
        if self.built and shape == self.input_shape:
            return
        s = shape
        for layer in self.layers:  # infer every shape first: a misfit changes nothing
            s = layer.compute_output_shape(s)
        for layer in self.layers:
            self._prepare(layer, shape)
            shape = layer.output_shape
        self.input_shape = _shape(input_shape, "input_shape")
        self._undo.clear()
        self._structure_changed()
        self._notify("build", input_shape=self.input_shape)

    def _require_built(self, what: str) -> None:
        if not self.layers:
            raise ModelError(f"{what}: model {self.name!r} has no layers; add some first")
        if not self.built:
            raise ModelError(f"{what}: model {self.name!r} is not built; pass input_shape= to "
                             "Sequential, call build(input_shape) or fit it on data first")

    def _structure_changed(self) -> None:
        """Re-wire after any change: layers up to the first one with weights skip dx (nothing
        below them needs it, e.g. Flatten -> Dense); optimizer slots follow weights."""
        below = False
        for la in self.layers:
            la.need_dx = below
            below = below or bool(la.params)
        self._wire_training()

    # ---- weights -----------------------------------------------------------------------------
    def count_params(self) -> int:
        """All scalars (trainable and not), as Keras counts them."""
        return sum(la.count_params() for la in self.layers)

    def weight_names(self) -> list[str]:
        """"layer/param" of every array of ``get_weights``, in order."""
        return [f"{la.name}/{n}" for la in self.layers for n in la.weight_names()]

    def trainable_weight_names(self) -> list[str]:
        """"layer/param" of the trainable weights (compute_gradients order)."""
        return [f"{la.name}/{n}" for la in self.layers for n in la.params]

    def get_weights(self) -> list[np.ndarray]:
        """Host copies in layer order, kernel then bias (then state such as moving_mean).

        Dense kernels are (in, out), Conv2D kernels (out_channels, in_channels, kh, kw): the
        Keras Dense and PyTorch Conv2d layouts.
        """
        self._require_built("get_weights")
        return [w for la in self.layers for w in la.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace all weights (same order and shapes as ``get_weights``); all or nothing."""
        self._require_built("set_weights")
        names = self.weight_names()
        weights = list(weights)
        if len(weights) != len(names):
            raise ShapeError(f"set_weights: model {self.name!r} has {len(names)} weight arrays; "
                             f"received {len(weights)}")
        shapes = [tuple(a.shape) for la in self.layers
                  for a in list(la.params.values()) + list(la.state.values())]
        for n, s, w in zip(names, shapes, weights):
            if tuple(np.shape(w)) != s:
                raise ShapeError(f"set_weights: {n} expects shape {s}; received "
                                 f"{tuple(np.shape(w))}")
        with self._lock:  # never in the middle of a training step on another thread
            i = 0
            for la in self.layers:
                k = len(la.weight_names())
                la.set_weights(weights[i:i + k])
                i += k
        self._notify("weights")

    def to(self, device: str | Backend) -> Sequential:
        """Move weights and optimizer state to ``device`` ("numpy", "opencl", ...)."""
        be = get_backend(device)
        old = self.backend
        if be is old:
            return self
        for la in self.layers:
            la.to(be)
        if self.optimizer is not None:
            self.optimizer.to(be, old)
        self._backend = be
        self._undo.clear()  # undo snapshots hold arrays of the old device
        self._structure_changed()
        self._notify("weights", device=be.key)
        return self

    # ---- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-able architecture: {"name", "input_shape", "layers": [serialized layers]}."""
        return {"name": self.name,
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "layers": [serialize(la) for la in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | None = None) -> Sequential:
        """A new model (weights freshly initialized) from ``get_config`` output."""
        if not isinstance(config, dict) or "layers" not in config:
            raise ConfigError(f"a Sequential config is a dict with 'layers'; received "
                              f"{type(config).__name__}")
        layers = [deserialize(d) for d in config["layers"]]
        return cls(layers, input_shape=config.get("input_shape"), name=config.get("name"),
                   seed=seed)

    # ---- description --------------------------------------------------------------------------
    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print the Keras-style table: layer (type), output shape, params, totals."""
        (print_fn or print)(summary_text(self))

    def summary_text(self) -> str:
        return summary_text(self)

    def _repr_html_(self) -> str:
        return summary_html(self)

    @property
    def graph(self):
        """networkx.DiGraph: "input" then one node per layer (index, class_name, config,
        output_shape, params, device); edges carry the tensor ``shape`` flowing along them."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        shape = self.input_shape
        g.add_node("input", index=-1, class_name="Input", config={}, output_shape=shape,
                   params=0, device=self.backend.key)
        prev = "input"
        for i, la in enumerate(self.layers):
            g.add_node(la.name, index=i, class_name=type(la).__name__, config=la.get_config(),
                       output_shape=la.output_shape, params=la.count_params(),
                       device=self.backend.key)
            g.add_edge(prev, la.name, shape=shape)
            shape, prev = la.output_shape, la.name
        return g

    # ---- observers -----------------------------------------------------------------------------
    def observe(self, callback: Callable[[dict], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every change; returns the unsubscribe function."""
        if not callable(callback):
            raise ConfigError(f"observe expects a callable; received {callback!r}")
        self._observers.append(callback)

        def unsubscribe() -> None:
            if callback in self._observers:
                self._observers.remove(callback)

        return unsubscribe

    def _notify(self, kind: str, **info) -> None:
        event = {"type": kind, "model": self, **info}
        for cb in list(self._observers):
            try:
                cb(event)
            except Exception:  # noqa: BLE001 - a broken observer must not break the model
                log.exception("model observer %r failed on %r", cb, kind)

    # ---- save / load ---------------------------------------------------------------------------
    def save(self, path) -> None:
        """Architecture (JSON), weights and optimizer state (safetensors) in one file."""
        from .io import save_model

        save_model(self, path)

    def save_weights(self, path) -> None:
        """Weights only, as safetensors ("layer/param" tensor names)."""
        from .io import save_weights

        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights saved by ``save_weights`` or ``save`` (names and shapes must match)."""
        from .io import load_weights

        load_weights(self, path)
