"""MaxPool2D and AvgPool2D over NCHW inputs (padding excluded from averages)."""

from __future__ import annotations

from typing import Any

from .base import Layer, check_choice, check_pair, register
from .conv import window_geometry


class _Pool2D(Layer):
    def __init__(self, pool_size=2, strides=None, padding: str = "valid",
                 name: str | None = None) -> None:
        super().__init__(name)
        kind = type(self).__name__
        self.pool_size = check_pair(kind, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else check_pair(kind, "strides",
                                                                          strides)
        self._strides_arg = None if strides is None else self.strides
        self.padding = check_choice(kind, "padding", padding, ("valid", "same"))

    def get_config(self) -> dict[str, Any]:
        s = None if self._strides_arg is None else list(self._strides_arg)
        return {"pool_size": list(self.pool_size), "strides": s, "padding": self.padding,
                "name": self.name}

    def compute_output_shape(self, input_shape):
        _, (oh, ow) = window_geometry(self, input_shape, self.pool_size, self.strides,
                                      self.padding)
        return (input_shape[0], oh, ow)

    def build_params(self, input_shape) -> None:
        self._pad, _ = window_geometry(self, input_shape, self.pool_size, self.strides,
                                       self.padding)


@register
class MaxPool2D(_Pool2D):
    """Max over each window; backward routes dy to the arg-max input.

    Example:
        >>> import numpy as np
        >>> p = MaxPool2D(2); p.build((1, 4, 4))
        >>> p.forward(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))[0, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """

    def forward(self, x, training: bool = False):
        y, idx = self.be.maxpool2d_forward(x, self.pool_size, stride=self.strides,
                                           padding=self._pad)
        self._c_idx, self._c_shape = idx, tuple(x.shape)
        return y

    def backward(self, dy):
        return self.be.maxpool2d_backward(dy, self._c_idx, self._c_shape)


@register
class AvgPool2D(_Pool2D):
    """Mean over each window (LeNet's subsampling without its trainable scale).

    Example:
        >>> import numpy as np
        >>> p = AvgPool2D(2); p.build((1, 2, 2))
        >>> p.forward(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)).ravel().tolist()
        [1.5]
    """

    def forward(self, x, training: bool = False):
        self._c_shape = tuple(x.shape)
        return self.be.avgpool2d_forward(x, self.pool_size, stride=self.strides,
                                         padding=self._pad)

    def backward(self, dy):
        return self.be.avgpool2d_backward(dy, self._c_shape, self.pool_size,
                                          stride=self.strides, padding=self._pad)
