"""Losses: mean squared error (reduction "mean" or "sum") and (sparse) categorical
cross-entropy, fused with a softmax last layer (or raw logits) into one backend primitive.

A loss returns ``(total, scale, dy)``: ``total`` is a 0-d *device* array, the batch loss is
``float(total) * scale`` (so only one scalar crosses to the host), ``dy`` is the gradient of
that batch loss with respect to the model output (or to the logits when fused).

Example:
    >>> import numpy as np
    >>> from mao_lab import get_backend
    >>> be = get_backend("numpy")
    >>> total, scale, dy = MeanSquaredError()(be, np.ones((2, 2), np.float32),
    ...                                       np.zeros((2, 2), np.float32))
    >>> float(total) * scale
    1.0
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError


class Loss:
    """Base class; ``name`` is the string ``compile(loss=...)`` accepts."""

    name = "loss"
    sparse = False  # targets are integer class ids (B,)
    softmax_ce = False  # computed by the fused softmax-cross-entropy primitive

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __call__(self, be, y, t, logits: bool = False, grad: bool = True):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class MeanSquaredError(Loss):
    """Squared error; reduction "mean" averages over every element (Keras, PyTorch), "sum"
    adds them all (the "L2 loss" of the classic iris network)."""

    name = "mse"

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ConfigError(f"MeanSquaredError: reduction must be 'mean' or 'sum'. Received: "
                              f"reduction={reduction!r}")
        self.reduction = reduction

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction}

    def __call__(self, be, y, t, logits: bool = False, grad: bool = True):
        per = be.mse_forward(y, t)  # (B,) sums of squares
        total = be.reduce_sum(per, 0)
        n = 1
        for d in y.shape:
            n *= int(d)
        scale = 1.0 / n if self.reduction == "mean" else 1.0
        return total, scale, (be.mse_backward(y, t, scale=scale) if grad else None)


class CategoricalCrossentropy(Loss):
    """Cross-entropy against (B, K) one-hot or probability targets, mean over the batch.

    With ``from_logits=False`` the model's last layer must end in a softmax; training then
    feeds the pre-softmax values to the fused softmax-cross-entropy primitive (stable, one
    kernel). With ``from_logits=True`` the model output is taken as logits.
    """

    name = "categorical_crossentropy"
    softmax_ce = True

    def __init__(self, from_logits: bool = False) -> None:
        if from_logits not in (True, False):
            raise ConfigError(f"{type(self).__name__}: from_logits must be a bool. Received: "
                              f"from_logits={from_logits!r}")
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits}

    def __call__(self, be, y, t, logits: bool = False, grad: bool = True):
        if not (logits or self.from_logits):
            raise ConfigError(f"{self.name}: needs logits (from_logits=True) or a softmax last "
                              "layer whose pre-activation the model passes in")
        probs, per = be.softmax_cross_entropy_forward(y, t)
        total = be.reduce_sum(per, 0)
        scale = 1.0 / int(y.shape[0])
        dy = be.softmax_cross_entropy_backward(probs, t, scale=scale) if grad else None
        return total, scale, dy


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy against integer class ids (B,)."""

    name = "sparse_categorical_crossentropy"
    sparse = True


LOSSES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_CLASSES = {c.__name__: c for c in (MeanSquaredError, CategoricalCrossentropy,
                                    SparseCategoricalCrossentropy)}


def get(loss: str | dict | Loss) -> Loss:
    """A Loss from a name, a ``serialize`` dict or an instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict) and loss.get("class_name") in _CLASSES:
        return _CLASSES[loss["class_name"]].from_config(loss.get("config", {}))
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ConfigError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)} or a "
                      "mao_lab.losses.Loss instance")


def serialize(loss: Loss) -> dict[str, Any]:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
