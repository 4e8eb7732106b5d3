"""NormMixin: batch normalization forward/backward on OpenCL (kernels/norm.cl).

x is (B, C) or (B, C, H, W) with per-channel statistics; running stats update in place.
"""

from __future__ import annotations

from ...errors import ShapeError
from .ops_launch import f32, i32, nelem


class NormMixin:
    """Batch-norm primitives; see NumpyBackend for the specification of each."""

    def _bn_dims(self, x, op):
        if x.ndim not in (2, 4):
            raise ShapeError(f"{op}: x must be (B, C) or (B, C, H, W); received shape "
                             f"{tuple(x.shape)}")
        b, c = int(x.shape[0]), int(x.shape[1])
        return b, c, nelem(x.shape[2:])

    def batchnorm_forward(self, x, gamma, beta, running_mean, running_var, *,
                          momentum: float = 0.99, eps: float = 1e-3, training: bool = True):
        """Returns (y, xhat, inv_std); inference returns (y, None, None)."""
        op = "batchnorm_forward"
        b, c, s = self._bn_dims(x, op)
        if x.shape[1] != gamma.shape[0]:
            raise ShapeError(f"batchnorm_forward: x has {x.shape[1]} channels, gamma "
                             f"{gamma.shape[0]}")
        x = self._dev(x, "x", op)
        gamma, beta = self._dev(gamma, "gamma", op), self._dev(beta, "beta", op)
        rm = self._out(running_mean, (c,), "running_mean", op)
        rv = self._out(running_var, (c,), "running_var", op)
        y = self.empty(x.shape)
        if not training:
            self._launch1("norm.cl", "batchnorm_forward_infer", b * c,
                          (x, rm, rv, gamma, beta, y, i32(b * c), i32(c), i32(s), f32(eps)))
            return y, None, None
        mean = self._scratch("bn_mean", (c,))
        inv = self.empty((c,))
        self._launch1("norm.cl", "batchnorm_forward_stats", c,
                      (x, mean, inv, rm, rv, i32(b), i32(c), i32(s), f32(momentum), f32(eps)))
        xhat = self.empty(x.shape)
        self._launch1("norm.cl", "batchnorm_forward", b * c,
                      (x, mean, inv, gamma, beta, y, xhat, i32(b * c), i32(c), i32(s)))
        return y, xhat, inv

    def batchnorm_backward(self, dy, xhat, inv_std, gamma, dgamma, dbeta):
        """dx; accumulates dgamma += sum(dy * xhat), dbeta += sum(dy) per channel."""
        op = "batchnorm_backward"
        if dy.shape != xhat.shape:
            raise ShapeError(f"{op}: dy {dy.shape} and xhat {xhat.shape} differ")
        b, c, s = self._bn_dims(dy, op)
        dy, xhat = self._dev(dy, "dy", op), self._dev(xhat, "xhat", op)
        inv_std, gamma = self._dev(inv_std, "inv_std", op), self._dev(gamma, "gamma", op)
        dgamma = self._out(dgamma, (c,), "dgamma", op)
        dbeta = self._out(dbeta, (c,), "dbeta", op)
        sums = self._scratch("bn_sums", (2 * c,))
        self._launch1("norm.cl", "batchnorm_backward_sums", c,
                      (dy, xhat, sums, dgamma, dbeta, i32(b), i32(c), i32(s)))
        dx = self.empty(dy.shape)
        self._launch1("norm.cl", op, b * c,
                      (dy, xhat, sums, gamma, inv_std, dx, i32(b * c), i32(c), i32(s),
                       f32(b * s)))
        return dx
