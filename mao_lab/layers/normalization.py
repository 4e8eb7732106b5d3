"""BatchNorm over the channel axis of (B, C) or (B, C, H, W) inputs, Keras defaults."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, ModelError, ShapeError
from .base import Layer, register


@register
class BatchNorm(Layer):
    """Batch normalization: batch statistics while training, moving statistics otherwise.

    Weights (Keras order): gamma, beta (trainable); moving_mean, moving_variance (state).
    moving = momentum * moving + (1 - momentum) * batch statistic.

    Example:
        >>> import numpy as np
        >>> bn = BatchNorm(); bn.build((2,))
        >>> y = bn.forward(np.array([[0.0, 1.0], [2.0, 3.0]], np.float32), training=True)
        >>> np.round(y, 2).tolist()
        [[-1.0, -1.0], [1.0, 1.0]]
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3,
                 name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (
                0 <= momentum < 1):
            raise ConfigError(f"BatchNorm: momentum must be in [0, 1). Received: "
                              f"momentum={momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ConfigError(f"BatchNorm: epsilon must be > 0. Received: epsilon={epsilon!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def get_config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "epsilon": self.epsilon, "name": self.name}

    def compute_output_shape(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"{self.name} (BatchNorm) expects (features,) or (channels, "
                             f"height, width) per sample; received {tuple(input_shape)}")
        return tuple(input_shape)

    def build_params(self, input_shape) -> None:
        c = (input_shape[0],)
        self.add_param("gamma", c, "ones")
        self.add_param("beta", c, "zeros")
        self.add_param("moving_mean", c, "zeros", trainable=False)
        self.add_param("moving_variance", c, "ones", trainable=False)

    def forward(self, x, training: bool = False):
        p, s = self.params, self.state
        y, xhat, inv = self.be.batchnorm_forward(
            x, p["gamma"], p["beta"], s["moving_mean"], s["moving_variance"],
            momentum=self.momentum, eps=self.epsilon, training=training)
        self._c_xhat, self._c_inv = xhat, inv
        return y

    def backward(self, dy):
        if self._c_xhat is None:
            raise ModelError(f"{self.name} (BatchNorm): backward needs a forward with "
                             "training=True (inference uses the moving statistics)")
        if self._grad_beta() == 0.0:
            self.be.fill(self.grads["gamma"], 0.0)
            self.be.fill(self.grads["beta"], 0.0)
        return self.be.batchnorm_backward(dy, self._c_xhat, self._c_inv, self.params["gamma"],
                                          self.grads["gamma"], self.grads["beta"])
