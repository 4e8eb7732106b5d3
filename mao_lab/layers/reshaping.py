"""Flatten and Reshape: views of the same device memory with a new per-sample shape."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from .base import Layer, register


@register
class Flatten(Layer):
    """(B, d1, d2, ...) -> (B, d1*d2*...), in C order (NCHW: channel-major).

    Example:
        >>> import numpy as np
        >>> f = Flatten(); f.build((2, 3, 3))
        >>> f.forward(np.zeros((5, 2, 3, 3), np.float32)).shape
        (5, 18)
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training: bool = False):
        self._c_shape = tuple(x.shape)
        return self.be.reshape(x, (x.shape[0], -1))

    def backward(self, dy):
        return self.be.reshape(dy, self._c_shape)


@register
class Reshape(Layer):
    """Per-sample reshape to ``target_shape`` (one entry may be -1).

    Example:
        >>> import numpy as np
        >>> r = Reshape((1, 2, 2)); r.build((4,))
        >>> r.forward(np.zeros((3, 4), np.float32)).shape
        (3, 1, 2, 2)
    """

    def __init__(self, target_shape, name: str | None = None) -> None:
        super().__init__(name)
        t = target_shape
        ok = isinstance(t, (tuple, list)) and len(t) > 0 and all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d > 0 or d == -1)
            for d in t) and sum(d == -1 for d in t) <= 1
        if not ok:
            raise ConfigError("Reshape: target_shape must be a non-empty tuple of positive "
                              f"ints (at most one -1). Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in t)

    def get_config(self) -> dict[str, Any]:
        return {"target_shape": list(self.target_shape), "name": self.name}

    def compute_output_shape(self, input_shape):
        n = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        out = tuple(n // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(out)) != n:
            raise ShapeError(f"{self.name} (Reshape): cannot reshape input {tuple(input_shape)} "
                             f"({n} values) to {self.target_shape}")
        return out

    def forward(self, x, training: bool = False):
        self._c_shape = tuple(x.shape)
        return self.be.reshape(x, (x.shape[0],) + self.output_shape)

    def backward(self, dy):
        return self.be.reshape(dy, self._c_shape)
