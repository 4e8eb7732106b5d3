"""The Layer contract (hyperparameters, build, forward, backward, config) and the registry.

Rule of every layer: ``__init__`` validates hyperparameters only; ``build(input_shape)``
creates weights through ``add_param``; ``forward`` keeps what ``backward`` needs;
``backward(dy)`` returns dx and *accumulates* into ``grads`` (a training loop calls
``zero_grads()`` between steps, which makes the next backward overwrite instead).
Shapes never include the batch dimension. Layers call only backend primitives.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np

from ..backends import ACTIVATIONS, Backend, get_backend
from ..errors import ConfigError, ShapeError

_REGISTRY: dict[str, type[Layer]] = {}
_NAME_COUNTS: dict[str, int] = {}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make ``cls`` known to ``deserialize`` by its class name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def get_layer_class(name: str) -> type[Layer]:
    """The registered layer class called ``name`` (e.g. "Dense")."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown layer class {name!r}; expected one of {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def serialize(layer: Layer) -> dict[str, Any]:
    """{"class_name": "Dense", "config": {...}}: JSON-able, rebuilt by ``deserialize``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(d: dict[str, Any]) -> Layer:
    """A new (unbuilt) layer from ``serialize``'s output."""
    if not isinstance(d, dict) or "class_name" not in d or "config" not in d:
        raise ConfigError(
            f"a serialized layer is a dict with 'class_name' and 'config'; received {d!r}"
        )
    return get_layer_class(d["class_name"]).from_config(d["config"])


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def auto_name(cls_name: str) -> str:
    """Keras-style unique default names: dense, dense_1, dense_2, ..."""
    base = _snake(cls_name)
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


# ---- validation helpers shared by the layer modules ---------------------------------------
def check_positive_int(cls: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{cls}: {key} must be a positive integer. Received: {key}={value!r}")
    return int(value)


def check_pair(cls: str, key: str, value: Any) -> tuple[int, int]:
    """An int or a pair of positive ints -> (a, b)."""
    v = (value, value) if isinstance(value, (int, np.integer)) else value
    if (not isinstance(v, (tuple, list)) or len(v) != 2 or any(
            isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < 1 for e in v)):
        raise ConfigError(
            f"{cls}: {key} must be a positive integer or a pair of them. Received: "
            f"{key}={value!r}")
    return int(v[0]), int(v[1])


def check_choice(cls: str, key: str, value: Any, choices) -> Any:
    if value not in choices:
        raise ConfigError(
            f"{cls}: {key} must be one of {', '.join(map(repr, choices))}. Received: "
            f"{key}={value!r}")
    return value


def check_activation(cls: str, value: Any) -> str:
    """None means "linear"; otherwise one of the backend ACTIVATIONS."""
    value = "linear" if value is None else value
    return check_choice(cls, "activation", value, ACTIVATIONS)


def check_initializer(cls: str, key: str, value: Any) -> str:
    from ..initializers import INITIALIZERS  # lazy: initializers sit above layers

    return check_choice(cls, key, value, tuple(INITIALIZERS))


class Layer:
    """Base class of every layer. Subclasses implement the methods marked below.

    Attributes:
        name: unique within a model; weights are addressed as "name/param".
        built: True once ``build`` created the weights.
        input_shape, output_shape: without the batch dimension.
        params: trainable weights, name -> device array. grads: same keys.
        state: non-trainable weights (e.g. BatchNorm "moving_mean").
        be: the backend the weights live on (numpy until the model moves them).
        need_dx: False lets the first layer of a model skip computing dx.
    """

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            name = auto_name(type(self).__name__)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(
                f"{type(self).__name__}: name must be a non-empty string of letters, digits, "
                f"'_', '.' or '-' (no '/'). Received: name={name!r}")
        self.name = name
        self.built = False
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.be: Backend | None = None
        self.rng: np.random.Generator | None = None
        self.need_dx = True
        self._gbeta = 1.0  # 0.0 right after zero_grads(): the next backward overwrites

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"<{type(self).__name__} {self.name!r}({args})>"

    # ---- to implement ----------------------------------------------------------------------
    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape (no batch dim) for ``input_shape``; raises ShapeError if it does not fit."""
        return tuple(input_shape)

    def build_params(self, input_shape: tuple[int, ...]) -> None:
        """Create the weights with ``add_param`` (layers without weights skip this)."""

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    # ---- shared machinery ------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A new layer from ``get_config()`` output (unknown keys are a ConfigError)."""
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = set(config) - allowed
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown config keys {sorted(unknown)}; expected some of "
                f"{sorted(allowed)}")
        return cls(**config)

    def build(self, input_shape) -> None:
        """Check ``input_shape`` (no batch dim), create the weights, mark the layer built."""
        shape = tuple(int(d) for d in input_shape)
        if any(d < 1 for d in shape):
            raise ShapeError(f"{self.name} ({type(self).__name__}): input shape must be "
                             f"positive; received {shape}")
        out = self.compute_output_shape(shape)
        if self.be is None:
            self.be = get_backend("numpy")
        if self.rng is None:
            self.rng = np.random.default_rng()
        self.params, self.grads, self.state = {}, {}, {}
        self.build_params(shape)
        self.input_shape, self.output_shape = shape, tuple(out)
        self.built = True
        self._gbeta = 1.0

    def add_param(self, name: str, shape: tuple[int, ...], initializer: str, *,
                  fans: tuple[int, int] = (1, 1), trainable: bool = True):
        """Create weight ``name`` on this layer's backend from a host initializer."""
        from ..initializers import get as get_init

        host = get_init(initializer)(tuple(shape), fans[0], fans[1], self.rng)
        arr = self.be.asarray(host)
        if trainable:
            self.params[name] = arr
            self.grads[name] = self.be.zeros(tuple(shape))
        else:
            self.state[name] = arr
        return arr

    def runtime_state(self) -> dict[str, Any]:
        """JSON-able non-weight state that training advances (saved with the model)."""
        return {}

    def set_runtime_state(self, state: dict[str, Any]) -> None:
        """Restore ``runtime_state`` output."""

    def zero_grads(self) -> None:
        """Make the next backward overwrite the grads instead of accumulating (no kernel)."""
        self._gbeta = 0.0

    def _grad_beta(self) -> float:
        """beta for this backward's gradient writes; later backwards accumulate."""
        b, self._gbeta = self._gbeta, 1.0
        return b

    def count_params(self) -> int:
        """Number of scalars in params and state (0 before build)."""
        arrays = list(self.params.values()) + list(self.state.values())
        return int(sum(int(np.prod(a.shape)) for a in arrays))

    def trainable_count(self) -> int:
        return int(sum(int(np.prod(a.shape)) for a in self.params.values()))

    def weight_names(self) -> list[str]:
        """Param then state names in get_weights order (Keras order: kernel, bias, ...)."""
        return list(self.params) + list(self.state)

    def get_weights(self) -> list[np.ndarray]:
        """Host copies of params then state, in ``weight_names`` order."""
        be = self.be
        return [np.array(be.to_host(a)) for a in list(self.params.values())
                + list(self.state.values())]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace every weight (same order and shapes as ``get_weights``)."""
        names = self.weight_names()
        if len(weights) != len(names):
            raise ShapeError(f"{self.name}: expected {len(names)} arrays ({names}); received "
                             f"{len(weights)}")
        arrays = {**self.params, **self.state}
        new = {}
        for n, w in zip(names, weights):
            w = np.asarray(w)
            if tuple(w.shape) != tuple(arrays[n].shape):
                raise ShapeError(f"{self.name}/{n}: expected shape {tuple(arrays[n].shape)}; "
                                 f"received {tuple(w.shape)}")
            new[n] = self.be.asarray(w.astype(np.float32))
        for n, a in new.items():
            (self.params if n in self.params else self.state)[n] = a

    def to(self, be: Backend) -> None:
        """Move weights to backend ``be`` (grads restart at zero there)."""
        old = self.be
        if old is be:
            return
        for d in (self.params, self.state):
            for k, a in d.items():
                d[k] = be.asarray(np.asarray(old.to_host(a)) if old is not None else a)
        self.grads = {k: be.zeros(tuple(a.shape)) for k, a in self.params.items()}
        self.be = be
        self._drop_cache()

    def _drop_cache(self) -> None:
        """Forget tensors kept from the last forward (they live on the old device)."""
        for k in [k for k in vars(self) if k.startswith("_c_")]:
            setattr(self, k, None)


def activation_output(be, y, kind: str, logits: bool):
    """Apply ``kind`` to ``y`` unless the model asked for logits (fused softmax-CE)."""
    if kind == "linear" or (logits and kind == "softmax"):
        return y
    return be.activation_forward(y, kind, out=y)
