"""ElementwiseMixin: add, mul, scale, axpy, activations and dropout masks on OpenCL.

Kernels in kernels/elementwise.cl and kernels/activation.cl (names match these methods).
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError, DTypeError, ShapeError
from .. import _checks as C
from .ops_launch import f32, i32, nelem

_ACT = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


def _dropout_threshold(rate: float) -> tuple[int, np.float32]:
    """(t, keep) such that u >= rate <=> top-24-bit hash >= t, and keep == numpy's 1/(1-rate).

    Evaluated with numpy's own expressions so every backend draws bit-identical masks.
    """
    c = int(np.ceil(rate * 2**24))
    cand = np.arange(max(0, c - 2), min(2**24, c + 2) + 1, dtype=np.float64)
    ok = (cand * (1.0 / (1 << 24))).astype(np.float32) >= rate
    t = int(cand[np.argmax(ok)]) if ok.any() else 2**24
    keep = (np.ones(1, dtype=bool) / (1.0 - rate)).astype(np.float32)[0]
    return t, keep


class ElementwiseMixin:
    """Elementwise primitives; see NumpyBackend for the specification of each."""

    def _binary(self, op: str, a, b, out):
        a = self._dev(a, "a", op)
        b = self._dev(b, "b", op)
        if a.size < b.size:  # both ops commute: keep the broadcast operand second
            a, b = b, a
        if a.shape != b.shape and tuple(a.shape[len(a.shape) - len(b.shape):]) != b.shape:
            raise ShapeError(
                f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast on "
                "OpenCL; expected equal shapes or one shape a trailing suffix of the other"
            )
        y = self._out(out, a.shape, "out", op)
        self._launch1("elementwise.cl", op, a.size, (a, b, y, i32(a.size), i32(max(b.size, 1))))
        return y

    def add(self, a, b, out=None):
        """a + b (b may be a trailing-suffix shape, e.g. a bias row)."""
        return self._binary("add", a, b, out)

    def mul(self, a, b, out=None):
        """a * b (b may be a trailing-suffix shape)."""
        return self._binary("mul", a, b, out)

    def scale(self, a, alpha: float, out=None):
        """alpha * a (``out`` may be ``a``)."""
        a = self._dev(a, "a", "scale")
        y = self._out(out, a.shape, "out", "scale")
        self._launch1("elementwise.cl", "scale", a.size, (a, y, i32(a.size), f32(alpha)))
        return y

    def axpy(self, alpha: float, x, y) -> None:
        """y += alpha * x, in place."""
        if x.shape != y.shape:
            raise ShapeError(f"axpy: x {x.shape} and y {y.shape} differ")
        x = self._dev(x, "x", "axpy")
        y = self._out(y, x.shape, "y", "axpy")
        self._launch1("elementwise.cl", "axpy", x.size, (x, y, i32(x.size), f32(alpha)))

    # ---- activations ----------------------------------------------------------------------
    def activation_forward(self, x, kind: str, out=None):
        """y = act(x) elementwise (softmax over the last axis)."""
        C.check_activation(kind, "activation_forward")
        x = self._dev(x, "x", "activation_forward")
        y = self._out(out, x.shape, "out", "activation_forward")
        if kind == "softmax":
            k = int(x.shape[-1]) if x.ndim else 1
            rows = x.size // max(k, 1)
            self._launch1("activation.cl", "activation_forward_softmax", rows,
                          (x, y, i32(rows), i32(k)))
        else:
            self._launch1("activation.cl", "activation_forward", x.size, (x, y, i32(x.size)),
                          (f"-DACT={_ACT[kind]}",))
        return y

    def activation_backward(self, dy, y, kind: str, out=None):
        """dx from dy and the forward *output* y (same shapes)."""
        C.check_activation(kind, "activation_backward")
        if dy.shape != y.shape:
            raise ShapeError(f"activation_backward: dy {dy.shape} and y {y.shape} differ")
        dy = self._dev(dy, "dy", "activation_backward")
        y = self._dev(y, "y", "activation_backward")
        dx = self._out(out, dy.shape, "out", "activation_backward")
        if kind == "softmax":
            k = int(y.shape[-1]) if y.ndim else 1
            rows = y.size // max(k, 1)
            self._launch1("activation.cl", "activation_backward_softmax", rows,
                          (dy, y, dx, i32(rows), i32(k)))
        else:
            self._launch1("activation.cl", "activation_backward", y.size,
                          (dy, y, dx, i32(y.size)), (f"-DACT={_ACT[kind]}",))
        return dx

    # ---- dropout --------------------------------------------------------------------------
    def dropout_mask(self, shape, rate: float, seed: int, offset: int = 0, dtype=np.float32):
        """Inverted-dropout mask, bit-identical to the numpy backend's for (seed, offset)."""
        if not 0 <= rate < 1:
            raise ConfigError(f"dropout_mask: rate must be in [0, 1); received {rate}")
        if np.dtype(dtype) != np.float32:
            raise DTypeError(f"dropout_mask on OpenCL supports float32 only; received {dtype}")
        shape = tuple(int(s) for s in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
        n = nelem(shape)
        t, keep = _dropout_threshold(rate)
        y = self.empty(shape)
        self._launch1("elementwise.cl", "dropout_mask", n,
                      (y, i32(n), np.uint32(seed & 0xFFFFFFFF), np.uint32(offset & 0xFFFFFFFF),
                       np.uint32(t), keep))
        return y
