"""LossMixin: softmax cross-entropy and MSE on OpenCL (kernels/loss.cl).

Labels are class ids (int32/int64, host or device) or (B, K) float32 probabilities.
"""

from __future__ import annotations

import numpy as np

from ...errors import DTypeError, ShapeError
from .. import _checks as C
from .ops_launch import f32, i32


class LossMixin:
    """Loss primitives; see NumpyBackend for the specification of each."""

    def _targets(self, labels, shape, op: str):
        """(device targets, build options) for class ids or probabilities, checked."""
        b, k = shape
        if labels.ndim == 1:
            if labels.shape[0] != b:
                raise ShapeError(f"{op}: {labels.shape[0]} labels for a batch of {b}")
            if labels.dtype.kind not in "iu":
                raise ShapeError(f"{op}: 1-D labels must be integer class ids")
            if isinstance(labels, np.ndarray):
                labels = self.asarray(labels, dtype=np.int64 if labels.dtype.itemsize > 4
                                      or labels.dtype == np.uint32 else np.int32)
            labels = self._dev(labels, "labels", op, dtypes=("int32", "int64"))
            ltype = "long" if labels.dtype == np.int64 else "int"
            return labels, ("-DTARGETS=0", f"-DLABEL_T={ltype}")
        C.check_shape("labels", labels, shape, op)
        if isinstance(labels, np.ndarray):
            if labels.dtype.kind not in "fiu":
                raise DTypeError(f"{op}: probability targets must be numeric; "
                                 f"received {labels.dtype}")
            labels = self.asarray(labels, dtype=np.float32)
        return self._dev(labels, "labels", op), ("-DTARGETS=1",)

    def softmax_cross_entropy_forward(self, logits, labels):
        """logits: (B, K); labels: (B,) int or (B, K) probabilities -> (probs, loss (B,))."""
        op = "softmax_cross_entropy_forward"
        C.check_ndim("logits", logits, 2, op)
        t, opts = self._targets(labels, logits.shape, op)
        z = self._dev(logits, "logits", op)
        b, k = (int(s) for s in z.shape)
        probs = self.empty((b, k))
        loss = self.empty((b,))
        self._launch1("loss.cl", op, b, (z, t, probs, loss, i32(b), i32(k)), opts)
        return probs, loss

    def softmax_cross_entropy_backward(self, probs, labels, scale: float = 1.0):
        """d loss / d logits = (probs - targets) * scale; probs: (B, K)."""
        op = "softmax_cross_entropy_backward"
        C.check_ndim("probs", probs, 2, op)
        t, opts = self._targets(labels, probs.shape, op)
        p = self._dev(probs, "probs", op)
        b, k = (int(s) for s in p.shape)
        dz = self.empty((b, k))
        self._launch1("loss.cl", op, b, (p, t, dz, i32(b), i32(k), f32(scale)), opts)
        return dz

    def mse_forward(self, y, t):
        """Per-sample sum of squared errors: y, t: (B, ...) -> (B,)."""
        C.check_shape("target", t, y.shape, "mse_forward")
        y = self._dev(y, "y", "mse_forward")
        t = self._dev(t, "target", "mse_forward")
        b = int(y.shape[0]) if y.ndim else 1
        n = y.size // max(b, 1)
        loss = self.empty((b,))
        self._launch1("loss.cl", "mse_forward", b, (y, t, loss, i32(b), i32(n)))
        return loss

    def mse_backward(self, y, t, scale: float = 1.0):
        """d/dy of scale * sum((y - t)**2) = 2 * scale * (y - t)."""
        C.check_shape("target", t, y.shape, "mse_backward")
        y = self._dev(y, "y", "mse_backward")
        t = self._dev(t, "target", "mse_backward")
        dy = self.empty(y.shape)
        self._launch1("loss.cl", "mse_backward", y.size, (y, t, dy, i32(y.size),
                                                          f32(2.0 * scale)))
        return dy
