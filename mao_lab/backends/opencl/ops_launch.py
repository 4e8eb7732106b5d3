"""LaunchMixin: the shared plumbing of the OpenCL primitive mixins (checks, launch, scratch).

Kernels are cached kernel objects; a launch sets arguments with ``set_args`` and enqueues
without waiting, so a training step pays ~2-4 us per kernel and one wait at the end.
"""

from __future__ import annotations

import math

import numpy as np
import pyopencl as cl
import pyopencl.array as cla

from ...errors import DTypeError, ShapeError
from .. import _checks as C

F32 = np.dtype(np.float32)
LOCAL = 64  # work-group size of the 1-D kernels (global sizes are rounded up to it)


def i32(v) -> np.int32:
    return np.int32(v)


def f32(v) -> np.float32:
    return np.float32(v)


def ceil_to(n: int, m: int) -> int:
    return max(m, -(-int(n) // m) * m)


def nelem(shape) -> int:
    """The element count of ``shape`` (math.prod: np.prod costs ~5 us a call)."""
    return math.prod(int(s) for s in shape)


def c_contiguous(a) -> bool:
    """``a.flags.c_contiguous`` without building pyopencl's flags object (~10 us)."""
    acc = a.dtype.itemsize
    for s, st in zip(reversed(a.shape), reversed(a.strides)):
        if s != 1 and st != acc:
            return False
        acc *= s
    return True


class LaunchMixin:
    """Helpers for OpenCLBackend mixins; needs ``self.rt``, ``self.queue``, ``self.ctx``."""

    # ---- argument checks (same messages and exception types as the numpy reference) ------
    def _dev(self, a, name: str, op: str, dtypes=("float32",)):
        """``a`` as a contiguous, offset-0 device array of an allowed dtype, or a clear error."""
        if not isinstance(a, cla.Array):
            raise DTypeError(
                f"{op}: '{name}' must be a device array of this backend (pyopencl.array.Array, "
                f"e.g. from backend.asarray); received {type(a).__module__}.{type(a).__name__}"
            )
        if not any(a.dtype == d for d in dtypes):
            raise DTypeError(
                f"{op} on OpenCL supports {' or '.join(dtypes)}: '{name}' has dtype {a.dtype}. "
                f"Convert with backend.asarray(x, dtype='{dtypes[0]}'), or use the numpy "
                "backend for float64"
            )
        if not c_contiguous(a):
            raise ShapeError(
                f"{op}: '{name}' must be C-contiguous; received strides {a.strides} for shape "
                f"{a.shape} (copy it first)"
            )
        if a.offset:
            a = a.copy(queue=self.queue)  # kernels take plain buffers
        return a

    def _out(self, out, shape, name: str, op: str):
        """A float32 output array of ``shape``: ``out`` checked, or a new one."""
        if out is None:
            return self.empty(shape)
        C.check_shape(name, out, shape, op)
        if not isinstance(out, cla.Array) or out.dtype != F32 or not c_contiguous(out) \
                or out.offset:
            raise DTypeError(
                f"{op}: '{name}' must be a contiguous float32 device array at offset 0; "
                f"received {type(out).__name__} {getattr(out, 'dtype', '')}"
            )
        return out

    # ---- launching -----------------------------------------------------------------------
    def _launch(self, file: str, name: str, gsize, lsize, args, options=()) -> None:
        """Set ``args`` on the cached kernel and enqueue it (no wait)."""
        k = self.rt.kernel(file, name, tuple(options))
        args = [a.base_data if isinstance(a, cla.Array) else a for a in args]
        if not getattr(k, "_mao_typed", False):
            # typed scalars make set_args ~1.7 us instead of ~40 us
            k.set_scalar_arg_dtypes(
                [None if isinstance(a, cl.MemoryObjectHolder) else np.asarray(a).dtype
                 for a in args])
            k._mao_typed = True
        k.set_args(*args)
        cl.enqueue_nd_range_kernel(self.queue, k, tuple(int(g) for g in gsize),
                                   None if lsize is None else tuple(lsize))

    def _launch1(self, file: str, name: str, n: int, args, options=()) -> None:
        """A 1-D launch over ``n`` work-items (rounded up to LOCAL; kernels check bounds)."""
        if n > 0:
            self._launch(file, name, (ceil_to(n, LOCAL),), (LOCAL,), args, options)

    def _scratch(self, slot: str, shape, dtype=F32):
        """A reusable device array for intermediates (safe: the queue is in order)."""
        store = self.__dict__.setdefault("_ops_scratch", {})
        nbytes = max(4, nelem(shape) * np.dtype(dtype).itemsize)
        buf = store.get(slot)
        if buf is None or buf.size < nbytes:
            buf = cl.Buffer(self.ctx, cl.mem_flags.READ_WRITE, max(nbytes, 4096))
            store[slot] = buf
        return self._array(shape, dtype, data=buf)
