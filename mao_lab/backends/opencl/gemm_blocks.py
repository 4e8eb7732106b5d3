"""GEMM register blocks and operands: the block each shape gets, operand strides, and
``PackedB`` (a right operand packed once into column panels, e.g. weights for inference).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pyopencl as cl
import pyopencl.array as cla

from ...errors import DTypeError
from .tuner import GemmConfig

_F32 = np.dtype(np.float32)


def _elem_strides(a, name: str) -> tuple[int, int, int]:
    """(offset, row stride, column stride) of a 1-/2-D float32 device array, in elements."""
    if type(a) is not cla.Array and not isinstance(a, cla.Array):
        raise DTypeError(
            f"gemm: '{name}' must be a device array (pyopencl.array.Array, e.g. from "
            f"backend.asarray); received {type(a).__module__}.{type(a).__name__}"
        )
    if a.dtype != _F32:
        raise DTypeError(
            f"gemm on OpenCL supports float32 only: '{name}' has dtype {a.dtype}. Convert with "
            "backend.asarray(x, dtype='float32'), or use the numpy backend for float64"
        )
    st = a.strides
    s0 = st[0] >> 2 if st else 1
    s1 = st[1] >> 2 if len(st) > 1 else 1
    return a.offset >> 2, s0, s1  # float32 buffers: offsets and strides are multiples of 4


def _kpad(k: int, ku: int) -> int:
    """K rounded up to a multiple of the unroll (at least one step; padding is zeros)."""
    return max(ku, -(-k // ku) * ku)


@lru_cache(maxsize=64)
def b_config(cfg: GemmConfig, n: int) -> GemmConfig:
    """The register block for an output of width ``n``: narrow outputs get narrow blocks."""
    if n < 16 and cfg.nr > 8:
        return replace(cfg, vw=8, nv=1, mr=max(cfg.mr, 16))
    if n < 32 and cfg.nr > 16:
        return replace(cfg, vw=16, nv=1, mr=max(cfg.mr, 12))
    return cfg


@lru_cache(maxsize=64)
def thin_config(cfg: GemmConfig, m: int, n: int) -> GemmConfig:
    """The block for a few long rows (M <= 16, long K: conv weight gradients): at most two
    row blocks of 4 or 8 rows, so B streams from memory once or twice, not once per 4 rows
    (16 x 150 x 6400 on PoCL, 1 thread: 1.6 ms with the 4 x 64 block, ~0.75 ms with 8 x 32).
    """
    return replace(cfg, mr=4 if m <= 4 else 8, vw=16, nv=2 if n >= 32 else 1)


@lru_cache(maxsize=64)
def tall_config(cfg: GemmConfig) -> GemmConfig:
    """The block for many rows and a narrow output (im2col convolutions, N < 32): 4 rows.
    Measured on PoCL, 1 thread, interleaved: 6400 x 16 x 150 ~1.3x, 50176 x 6 x 25 ~1.2x
    faster than the 12- or 16-row narrow block."""
    return replace(cfg, mr=4)


class PackedB:
    """op(b) packed into column panels for gemm; reuse it while ``b`` does not change.

    Create with ``backend.pack_b(w, trans_b=...)`` and pass it to ``gemm`` as ``b``. After
    ``w`` changes (an optimizer step updates weights in place), call ``repack()``: the
    packed copy never follows the source by itself.
    """

    def __init__(self, backend, b, trans_b: bool) -> None:
        _elem_strides(b, "b")
        self.backend, self.source, self.trans_b = backend, b, bool(trans_b)
        k, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
        self.shape = (int(k), int(n))  # of op(b)
        self.dtype = _F32
        self.base = backend.gemm_config
        self.config = b_config(self.base, min(self.shape[1], 32))
        self.kp = _kpad(self.shape[0], self.config.ku)
        nb = -(-self.shape[1] // self.config.nr)
        nbytes = max(4, nb * self.kp * self.config.nr * 4)
        self.buffer = cl.Buffer(backend.ctx, cl.mem_flags.READ_WRITE, nbytes)
        self.repack()

    def repack(self) -> PackedB:
        """Pack the source again (after it changed). Returns self."""
        off, s0, s1 = _elem_strides(self.source, "b")
        sk, sn = (s1, s0) if self.trans_b else (s0, s1)
        self.backend._pack(self.source.base_data, off, sk, sn, self.shape[1], self.shape[0],
                           self.kp, self.buffer, self.config, "b")
        return self
