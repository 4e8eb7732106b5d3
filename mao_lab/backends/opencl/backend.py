"""OpenCLBackend: device arrays are pyopencl.array.Array on one in-order queue.

The primitives come from mixins, one per kernel family (gemm, elementwise, conv, pool,
losses, norm, optim), each overriding the NumpyBackend method of the same name.
"""

from __future__ import annotations

import numpy as np
import pyopencl.array as cla

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

    # ---- memory -------------------------------------------------------------------------
    def asarray(self, x, dtype=None):
        """Host data -> device array (float32 unless ``dtype`` or an int/float64 input)."""
        if isinstance(x, cla.Array):
            return x if dtype is None or x.dtype == dtype else x.astype(dtype)
        a = np.asarray(x)
        if dtype is None:
            dtype = a.dtype if a.dtype in (np.float64, np.int32, np.int64) else np.float32
        a = np.ascontiguousarray(a, dtype=dtype)
        return cla.to_device(self.queue, a)

    def to_host(self, a) -> np.ndarray:
        if isinstance(a, np.ndarray):
            return a
        return a.get(queue=self.queue)

    def empty(self, shape, dtype=np.float32):
        return cla.empty(self.queue, tuple(shape), dtype)

    def zeros(self, shape, dtype=np.float32):
        return cla.zeros(self.queue, tuple(shape), dtype)

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
