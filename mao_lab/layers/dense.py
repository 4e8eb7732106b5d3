"""Dense: y = act(x @ kernel + bias), the GEMM with its bias+activation epilogue fused.

Kernel layout (in, out) as in Keras; x: (B, in) -> y: (B, out).
"""

from __future__ import annotations

from typing import Any

from ..errors import ShapeError
from .base import (
    Layer,
    check_activation,
    check_choice,
    check_initializer,
    check_positive_int,
    register,
)


@register
class Dense(Layer):
    """Fully connected layer.

    Example:
        >>> import numpy as np
        >>> d = Dense(3, activation="relu"); d.build((4,))
        >>> d.forward(np.ones((2, 4), np.float32)).shape
        (2, 3)
    """

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 name: str | None = None) -> None:
        super().__init__(name)
        self.units = check_positive_int("Dense", "units", units)
        self.activation = check_activation("Dense", activation)
        self.use_bias = check_choice("Dense", "use_bias", use_bias, (True, False))
        self.kernel_initializer = check_initializer("Dense", "kernel_initializer",
                                                    kernel_initializer)
        self.bias_initializer = check_initializer("Dense", "bias_initializer", bias_initializer)

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ShapeError(
                f"{self.name} (Dense) expects inputs of shape (features,) per sample; received "
                f"{tuple(input_shape)}. Add a Flatten() layer before it.")
        return (self.units,)

    def build_params(self, input_shape) -> None:
        n_in = input_shape[0]
        self.add_param("kernel", (n_in, self.units), self.kernel_initializer,
                       fans=(n_in, self.units))
        if self.use_bias:
            self.add_param("bias", (self.units,), self.bias_initializer, fans=(n_in, self.units))

    def forward(self, x, training: bool = False, logits: bool = False):
        """x: (B, in) -> (B, units); ``logits=True`` skips a softmax (fused softmax-CE)."""
        act = "linear" if logits and self.activation == "softmax" else self.activation
        y = self.be.gemm(x, self.params["kernel"], bias=self.params.get("bias"), activation=act)
        self._c_x, self._c_y, self._c_act = x, y, act
        return y

    def backward(self, dy):
        """dy: (B, units) -> dx (B, in); kernel grad += x^T dz, bias grad += sum_B dz."""
        be, act = self.be, self._c_act
        dz = dy if act == "linear" else be.activation_backward(dy, self._c_y, act)
        beta = self._grad_beta()
        be.gemm(self._c_x, dz, trans_a=True, out=self.grads["kernel"], beta=beta)
        if self.use_bias:
            be.reduce_sum(dz, 0, out=self.grads["bias"], beta=beta)
        if not self.need_dx:
            return None
        return be.gemm(dz, self.params["kernel"], trans_b=True)
