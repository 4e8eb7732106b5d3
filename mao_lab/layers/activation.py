"""Activation: relu, sigmoid, tanh, softmax (last axis) or linear as a layer of its own."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Layer, check_activation, register


@register
class Activation(Layer):
    """Elementwise activation (softmax over the last axis).

    Example:
        >>> import numpy as np
        >>> a = Activation("relu"); a.build((2,))
        >>> a.forward(np.array([[-1.0, 2.0]], np.float32)).tolist()
        [[0.0, 2.0]]
    """

    def __init__(self, activation: str, name: str | None = None) -> None:
        super().__init__(name)
        if activation is None:
            raise ConfigError("Activation: activation must be one of linear, relu, sigmoid, "
                              "tanh, softmax. Received: activation=None")
        self.activation = check_activation("Activation", activation)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "name": self.name}

    def forward(self, x, training: bool = False, logits: bool = False):
        act = "linear" if logits and self.activation == "softmax" else self.activation
        self._c_act = act
        if act == "linear":
            return x
        y = self.be.activation_forward(x, act)
        self._c_y = y
        return y

    def backward(self, dy):
        if self._c_act == "linear":
            return dy
        return self.be.activation_backward(dy, self._c_y, self._c_act)
