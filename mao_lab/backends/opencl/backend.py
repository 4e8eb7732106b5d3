"""OpenCLBackend: device arrays are pyopencl.array.Array on one in-order queue.

The primitives come from mixins, one per kernel family (gemm, elementwise, conv, pool,
losses, norm, optim), each overriding the NumpyBackend method of the same name.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
import pyopencl.tools as cl_tools

from ...errors import ShapeError
from ..base import Backend, DeviceInfo
from .gemm import GemmMixin
from .ops_conv import ConvMixin
from .ops_elementwise import ElementwiseMixin
from .ops_launch import LaunchMixin
from .ops_loss import LossMixin
from .ops_norm import NormMixin
from .ops_optim import OptimMixin
from .ops_pool import PoolMixin
from .ops_reduce import ReduceMixin
from .runtime import Runtime


class OpenCLBackend(GemmMixin, ConvMixin, PoolMixin, ElementwiseMixin, LossMixin, ReduceMixin,
                    NormMixin, OptimMixin, LaunchMixin, Backend):
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
        out = cla.Array(self.queue, h.shape, h.dtype, allocator=self.pool)
        if h.size:
            # non-blocking: the event keeps ``h`` alive until the copy is done, and the
            # host does not wait for the queue (e.g. the previous step's updates) to drain
            cl.enqueue_copy(self.queue, out.base_data, h, is_blocking=False)
        return out

    def to_host(self, a) -> np.ndarray:
        if isinstance(a, np.ndarray):
            return a
        return a.get(queue=self.queue)

    def empty(self, shape, dtype=np.float32):
        return cla.Array(self.queue, tuple(shape), dtype, allocator=self.pool)

    def zeros(self, shape, dtype=np.float32):
        out = self.empty(shape, dtype)
        if out.nbytes:  # a fill command, not pyopencl's generic elementwise kernel
            cl.enqueue_fill_buffer(self.queue, out.base_data, np.zeros(1, np.uint8), 0,
                                   out.nbytes)
        return out

    def copy(self, a):
        return a.copy(queue=self.queue)

    def reshape(self, a, shape):
        try:
            return a.reshape(shape)
        except ValueError as exc:
            raise ShapeError(f"reshape: cannot view shape {a.shape} as {shape}") from exc

    def synchronize(self) -> None:
        self.queue.finish()

    def fill(self, a, value: float) -> None:
        a.fill(value, queue=self.queue)
