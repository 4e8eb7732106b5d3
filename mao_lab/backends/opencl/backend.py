"""OpenCLBackend: device arrays are pyopencl.array.Array on one in-order queue.

The primitives come from mixins, one per kernel family (gemm, elementwise, conv, pool,
losses, norm, optim), each overriding the NumpyBackend method of the same name.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
import pyopencl.tools as cl_tools

from ...errors import ShapeError
from ..base import Backend, DeviceInfo
from .gemm import GemmMixin
from .ops_conv import ConvMixin
from .ops_convpool import ConvPoolMixin
from .ops_elementwise import ElementwiseMixin
from .ops_launch import LaunchMixin, c_contiguous, nelem
from .ops_loss import LossMixin
from .ops_norm import NormMixin
from .ops_optim import OptimMixin
from .ops_pool import PoolMixin
from .ops_reduce import ReduceMixin
from .runtime import Runtime

_MAX_UPLOADS = 16  # upload events held before the oldest is waited for
_FAST_ARRAY = True  # pyopencl's Array(..., _fast=True) constructor works (checked on use)


class OpenCLBackend(GemmMixin, ConvMixin, ConvPoolMixin, PoolMixin, ElementwiseMixin,
                    LossMixin, ReduceMixin, NormMixin, OptimMixin, LaunchMixin, Backend):
    """One OpenCL device. Create through ``mao_lab.get_backend("opencl:<p>:<d>")``."""

    kind = "opencl"

    def __init__(self, info: DeviceInfo, device) -> None:
        self.info = info
        self.rt = Runtime(device, f"{info.key} ({info.platform} / {info.name})")
        self.ctx = self.rt.ctx
        self.queue = self.rt.queue
        # device arrays come from a pool: a training step allocates the same shapes every
        # step, and reusing freed buffers is safe on the one in-order queue
        self.pool = cl_tools.MemoryPool(cl_tools.ImmediateAllocator(self.queue))
        self._uploads: deque = deque()  # events of non-blocking uploads (see asarray)

    # ---- memory -------------------------------------------------------------------------
    def asarray(self, x, dtype=None):
        """Host data -> device array (float32 unless ``dtype`` or an int/float64 input)."""
        if isinstance(x, cla.Array):
            return x if dtype is None or x.dtype == dtype else x.astype(dtype)
        a = np.asarray(x)
        if dtype is None:
            dtype = a.dtype if a.dtype in (np.float64, np.int32, np.int64) else np.float32
        h = np.ascontiguousarray(a, dtype=dtype)
        if np.may_share_memory(h, x):  # the upload is not waited for: own the host copy
            h = h.copy()
        out = self.empty(h.shape, h.dtype)
        if h.size:
            # non-blocking: the host does not wait for the queue (e.g. the previous step's
            # updates) to drain. The event keeps ``h`` alive and waits for the copy when it
            # is dropped, so the backend holds it until a blocking read or a finish proves
            # it done: held by the array, dropping a label batch after the loss made the
            # host wait for the whole forward pass before it could enqueue the backward
            self._uploads.append(
                cl.enqueue_copy(self.queue, out.base_data, h, is_blocking=False))
            if len(self._uploads) > _MAX_UPLOADS:
                self._uploads.popleft()  # the oldest: long done in a training loop
        return out

    def to_host(self, a) -> np.ndarray:
        if isinstance(a, np.ndarray):
            return a
        out = a.get(queue=self.queue)  # blocking: every earlier command has completed
        self._uploads.clear()
        return out

    def empty(self, shape, dtype=np.float32):
        return self._array(shape, dtype)

    def _array(self, shape, dtype=np.float32, data=None, offset: int = 0):
        """A C-contiguous device array of ``shape`` on ``data`` (a buffer) or from the pool.

        pyopencl's fast constructor (~5 us) instead of its checking one (~30 us): shapes
        here are plain ints, and a training step creates a dozen arrays.
        """
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        strides, acc, size = [], dtype.itemsize, 1
        for s in reversed(shape):
            if s < 0:
                raise ShapeError(f"negative dimensions are not allowed: {shape}")
            strides.append(acc)
            acc *= max(1, s)
            size *= s
        if _FAST_ARRAY:
            try:
                out = cla.Array(None, shape, dtype, allocator=self.pool, data=data, offset=offset,
                                strides=tuple(reversed(strides)), _fast=True, _size=size,
                                _context=self.ctx, _queue=self.queue)
            except TypeError:  # pragma: no cover - a pyopencl without the fast constructor
                globals()["_FAST_ARRAY"] = False
            else:
                return out
        return cla.Array(self.queue, shape, dtype, allocator=self.pool, data=data,
                         offset=offset)

    def zeros(self, shape, dtype=np.float32):
        out = self.empty(shape, dtype)
        if out.nbytes:  # a fill command, not pyopencl's generic elementwise kernel
            cl.enqueue_fill_buffer(self.queue, out.base_data, np.zeros(1, np.uint8), 0,
                                   out.nbytes)
        return out

    def copy(self, a):
        return a.copy(queue=self.queue)

    def reshape(self, a, shape):
        if isinstance(a, cla.Array) and c_contiguous(a):  # a view, without pyopencl's checks
            shape = tuple(int(s) for s in ((shape,) if np.isscalar(shape) else shape))
            if shape.count(-1) == 1:
                rest = nelem([s for s in shape if s != -1])
                if rest and a.size % rest == 0:
                    shape = tuple(a.size // rest if s == -1 else s for s in shape)
            if all(s >= 0 for s in shape) and nelem(shape) == a.size:
                return self._array(shape, a.dtype, data=a.base_data, offset=a.offset)
        try:
            return a.reshape(shape)
        except ValueError as exc:
            raise ShapeError(f"reshape: cannot view shape {a.shape} as {shape}") from exc

    def synchronize(self) -> None:
        self.queue.finish()
        self._uploads.clear()

    def fill(self, a, value: float) -> None:
        if isinstance(a, cla.Array) and c_contiguous(a):  # a fill command, no kernel build
            if a.nbytes:
                cl.enqueue_fill_buffer(self.queue, a.base_data, np.array([value], a.dtype),
                                       a.offset, a.nbytes)
            return
        a.fill(value, queue=self.queue)
