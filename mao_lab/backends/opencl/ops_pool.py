"""PoolMixin: max and average pooling forward/backward on OpenCL (kernels/pool.cl).

maxpool2d_forward returns int32 flat indices into x, the numpy backend's convention, so
either backend's backward accepts them.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from ...errors import ShapeError
from .. import _checks as C
from .ops_launch import i32


class PoolMixin:
    """Pooling primitives; see NumpyBackend for the specification of each."""

    def _pool_args(self, x_shape, pool, stride, padding, op):
        stride = tuple(stride or pool)
        oh, ow = C.window_dims(x_shape, pool, stride, padding, op)
        b, c, h, w = (int(s) for s in x_shape)
        geo = (b * c, h, w, oh, ow, pool[0], pool[1], stride[0], stride[1], padding[0],
               padding[2])
        return (b, c, oh, ow), tuple(i32(v) for v in geo)

    def maxpool2d_forward(self, x, pool, *, stride=None, padding=(0, 0, 0, 0)):
        """x: (B, C, H, W) -> (y (B, C, OH, OW), idx int32 flat indices into x)."""
        op = "maxpool2d_forward"
        yshape, geo = self._pool_args(x.shape, pool, stride, padding, op)
        x = self._dev(x, "x", op)
        y = self.empty(yshape)
        idx = self.empty(yshape, dtype=np.int32)
        self._launch1("pool.cl", op, yshape[0] * yshape[1] * yshape[2], (x, y, idx) + geo)
        st = tuple(stride or pool)
        # no two windows overlap: the backward pass may store instead of adding atomically
        idx._mao_disjoint = st[0] >= pool[0] and st[1] >= pool[1]
        idx._mao_geo = (tuple(int(s) for s in x.shape), geo)  # for the gather backward
        return y, idx

    def maxpool2d_backward(self, dy, idx, x_shape):
        """dx (B, C, H, W): each dy routed to the input element its max came from."""
        op = "maxpool2d_backward"
        if dy.shape != idx.shape:
            raise ShapeError(f"maxpool2d_backward: dy {dy.shape} and idx {idx.shape} differ")
        dy = self._dev(dy, "dy", op)
        idx = self._dev(idx, "idx", op, dtypes=("int32",))
        dx = self.empty(tuple(int(s) for s in x_shape))
        geo = getattr(idx, "_mao_geo", None)
        if not getattr(idx, "_mao_disjoint", False) and geo is not None and geo[0] == tuple(
                dx.shape):
            # overlapping windows: a gather in a fixed order (every element written once),
            # so the sums are the same on every run, unlike atomic adds
            b, c, h, _ = geo[0]
            self._launch1("pool.cl", "maxpool2d_backward_gather", b * c * h,
                          (dy, idx, dx) + geo[1])
            return dx
        if dx.nbytes:  # a fill command: ~1.6x faster than a zeroing kernel on PoCL
            cl.enqueue_fill_buffer(self.queue, dx.base_data, np.zeros(1, np.float32), 0,
                                   dx.nbytes)
        # 64x6x28x28, 2x2 pool on PoCL: ~1.2 ms with atomic adds, ~0.13 ms with stores
        disjoint = getattr(idx, "_mao_disjoint", False)
        self._launch1("pool.cl", "maxpool2d_backward_disjoint" if disjoint else op, dy.size,
                      (dy, idx, dx, i32(dy.size)))
        return dx

    def avgpool2d_forward(self, x, pool, *, stride=None, padding=(0, 0, 0, 0)):
        """Mean over each window, padding excluded from the count: (B, C, OH, OW)."""
        op = "avgpool2d_forward"
        yshape, geo = self._pool_args(x.shape, pool, stride, padding, op)
        x = self._dev(x, "x", op)
        y = self.empty(yshape)
        self._launch1("pool.cl", op, yshape[0] * yshape[1] * yshape[2], (x, y) + geo)
        return y

    def avgpool2d_backward(self, dy, x_shape, pool, *, stride=None, padding=(0, 0, 0, 0)):
        """dx (B, C, H, W) of avgpool2d_forward."""
        op = "avgpool2d_backward"
        yshape, geo = self._pool_args(x_shape, pool, stride, padding, op)
        C.check_shape("dy", dy, yshape, op)
        dy = self._dev(dy, "dy", op)
        b, c, h, w = (int(s) for s in x_shape)
        dx = self.empty((b, c, h, w))
        self._launch1("pool.cl", op, b * c * h, (dy, dx) + geo)
        return dx
