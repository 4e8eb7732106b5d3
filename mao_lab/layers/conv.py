"""Conv2D over NCHW inputs, with the bias+activation epilogue fused into the backend conv.

Kernel layout (out_channels, in_channels, kh, kw); x: (B, C, H, W) -> (B, F, OH, OW).
"""

from __future__ import annotations

from typing import Any

from ..backends.base import conv_output_size
from ..errors import ShapeError
from .base import (
    Layer,
    check_activation,
    check_choice,
    check_initializer,
    check_pair,
    check_positive_int,
    register,
)


def same_padding(size: int, k: int, s: int) -> tuple[int, int]:
    """Keras/TensorFlow "same": output ceil(size / s), the extra pad goes after."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def window_geometry(layer: Layer, input_shape, window, strides, padding: str):
    """(padding tuple, (OH, OW)) of a window over (C, H, W), or a ShapeError naming the layer."""
    kind = type(layer).__name__
    if len(input_shape) != 3:
        raise ShapeError(f"{layer.name} ({kind}) expects inputs of shape (channels, height, "
                         f"width) per sample; received {tuple(input_shape)}")
    _, h, w = input_shape
    if padding == "same":
        pad = same_padding(h, window[0], strides[0]) + same_padding(w, window[1], strides[1])
    else:
        pad = (0, 0, 0, 0)
    if window[0] > h + pad[0] + pad[1] or window[1] > w + pad[2] + pad[3]:
        raise ShapeError(f"{layer.name} ({kind}): window {tuple(window)} is larger than the "
                         f"input (height, width) = ({h}, {w}) with padding '{padding}'")
    oh = conv_output_size(h, window[0], strides[0], pad[0], pad[1])
    ow = conv_output_size(w, window[1], strides[1], pad[2], pad[3])
    return pad, (oh, ow)


@register
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in Keras and PyTorch).

    Example:
        >>> import numpy as np
        >>> c = Conv2D(4, 3, padding="same"); c.build((1, 8, 8))
        >>> c.forward(np.ones((2, 1, 8, 8), np.float32)).shape
        (2, 4, 8, 8)
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 name: str | None = None) -> None:
        super().__init__(name)
        self.filters = check_positive_int("Conv2D", "filters", filters)
        self.kernel_size = check_pair("Conv2D", "kernel_size", kernel_size)
        self.strides = check_pair("Conv2D", "strides", strides)
        self.padding = check_choice("Conv2D", "padding", padding, ("valid", "same"))
        self.activation = check_activation("Conv2D", activation)
        self.use_bias = check_choice("Conv2D", "use_bias", use_bias, (True, False))
        self.kernel_initializer = check_initializer("Conv2D", "kernel_initializer",
                                                    kernel_initializer)
        self.bias_initializer = check_initializer("Conv2D", "bias_initializer", bias_initializer)

    def get_config(self) -> dict[str, Any]:
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}

    def compute_output_shape(self, input_shape):
        _, (oh, ow) = window_geometry(self, input_shape, self.kernel_size, self.strides,
                                      self.padding)
        return (self.filters, oh, ow)

    def build_params(self, input_shape) -> None:
        self._pad, _ = window_geometry(self, input_shape, self.kernel_size, self.strides,
                                       self.padding)
        c = input_shape[0]
        kh, kw = self.kernel_size
        fans = (c * kh * kw, self.filters * kh * kw)
        self.add_param("kernel", (self.filters, c, kh, kw), self.kernel_initializer, fans=fans)
        if self.use_bias:
            self.add_param("bias", (self.filters,), self.bias_initializer, fans=fans)

    def forward(self, x, training: bool = False, logits: bool = False):
        """x: (B, C, H, W) -> (B, filters, OH, OW)."""
        act = "linear" if logits and self.activation == "softmax" else self.activation
        y = self.be.conv2d_forward(x, self.params["kernel"], self.params.get("bias"),
                                   stride=self.strides, padding=self._pad, activation=act)
        self._c_x, self._c_y, self._c_act = x, y, act
        return y

    def backward(self, dy):
        """dy: (B, F, OH, OW) -> dx (B, C, H, W); accumulates kernel and bias grads."""
        be, act, x = self.be, self._c_act, self._c_x
        dz = dy if act == "linear" else be.activation_backward(dy, self._c_y, act)
        beta = self._grad_beta()
        w = self.params["kernel"]
        be.conv2d_backward_filter(dz, x, tuple(w.shape), stride=self.strides,
                                  padding=self._pad, out=self.grads["kernel"], beta=beta)
        if self.use_bias:
            be.reduce_sum(dz, (0, 2, 3), out=self.grads["bias"], beta=beta)
        if not self.need_dx:
            return None
        return be.conv2d_backward_data(dz, w, tuple(x.shape), stride=self.strides,
                                       padding=self._pad)

    # ---- fused with a following MaxPool2D (the model's step calls these) -------------------
    def fuses_with(self, nxt: Layer) -> bool:
        """True when this conv and the next layer can run as one backend op: a MaxPool2D
        with stride == pool and no padding, an activation that commutes with max, and a
        backend offering ``conv2d_maxpool_forward``."""
        return (type(nxt).__name__ == "MaxPool2D" and self.activation in ("relu", "linear")
                and tuple(nxt.strides) == tuple(nxt.pool_size) and not any(nxt._pad)
                and getattr(self.be, "conv2d_maxpool_forward", None) is not None)

    def forward_pooled(self, x, pool: Layer, training: bool = False):
        """act(maxpool(conv(x))): this layer followed by ``pool`` (see ``fuses_with``)."""
        y, st = self.be.conv2d_maxpool_forward(
            x, self.params["kernel"], self.params.get("bias"), stride=self.strides,
            padding=self._pad, activation=self.activation, pool=pool.pool_size)
        self._c_x, self._c_pooled = x, st
        return y

    def backward_pooled(self, dy):
        """Backward of ``forward_pooled``: dy is the pooled gradient; returns dx."""
        st, self._c_pooled = self._c_pooled, None
        return self.be.conv2d_maxpool_backward(
            dy, st, self._c_x, self.params["kernel"], stride=self.strides, padding=self._pad,
            dw_out=self.grads["kernel"], db_out=self.grads.get("bias"), beta=self._grad_beta(),
            need_dx=self.need_dx)
