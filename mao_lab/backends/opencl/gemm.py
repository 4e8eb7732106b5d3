"""GemmMixin: the OpenCL backend's ``gemm`` (packing, register-blocked kernel, epilogue).

B is packed into column panels (kernels/gemm_pack.cl), which absorbs transposes, strided
views and offsets (a tiny row-major B is read in place). A is read in place through its
strides, and packed into row panels only when its k-stride is long. Narrow outputs get a
narrow register block, short-K products several row blocks per work-item, long-K/small-C
products split K. ``pack_b`` keeps a packed right operand (weights) across calls.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pyopencl as cl
import pyopencl.array as cla

from ...errors import ConfigError, DTypeError, ShapeError
from .. import _checks as C
from .tuner import GemmConfig, gemm_config

_ACT_CODE = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 0}
_F32 = np.dtype(np.float32)
_KC = 32  # k per packing work-item, as KC in kernels/gemm_pack.cl
_I, _L, _F = np.int32, np.int64, np.float32
_GEMM_ARGS = [_I, _I, _I, _I, _I, None, _L, _L, _L, None, _L, _I, None, _L, _I, _F, _F, None,
              _L, _I, _I, _I]
_WI_WORK = 1 << 16  # multiply-adds a work-item should do at least (launch cost per item)
_SMALL_B = 1 << 15  # elements: a B this small is read in place (it stays in L1/L2)
_SMALL_A = 1 << 16  # elements of a transposed A with K <= _THIN_M read in place
_THIN_M, _THIN_B = 64, 1 << 18  # few rows: B up to 1 MB is read in place (packing it costs
# more than the few row blocks gain; 784x300 B, M=64: 425 -> 343 us on PoCL, 1 thread)
_REDUCE_ARGS = [_I, _I, _I, _I, None, None, _L, _I, _F, _F, None, _L, _I]
_PACK_ARGS = [None, _L, _L, _L, _I, _I, _I, None]


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


class GemmMixin:
    """``gemm`` and ``pack_b`` for OpenCLBackend (needs ``self.rt``, ``ctx``, ``queue``)."""

    _gemm_cfg: GemmConfig | None = None

    @property
    def gemm_config(self) -> GemmConfig:
        """The register-block configuration in use (tuned, cached on disk, or default)."""
        if self._gemm_cfg is None:
            self._gemm_cfg = gemm_config(self)
        return self._gemm_cfg

    @gemm_config.setter
    def gemm_config(self, cfg: GemmConfig) -> None:
        self._gemm_cfg = cfg

    def _workspace(self, slot: str, nbytes: int):
        """A scratch buffer of at least ``nbytes`` (grown, reused: the queue is in order)."""
        ws = self.__dict__.setdefault("_gemm_ws", {})
        buf = ws.get(slot)
        if buf is None or buf.size < nbytes:
            buf = cl.Buffer(self.ctx, cl.mem_flags.READ_WRITE, max(nbytes, 4096))
            ws[slot] = buf
        return buf

    def _gemm_kernel(self, cfg: GemmConfig, pack_a: bool, pack_b: bool):
        """The gemm kernel of one variant, looked up in one dict on hot paths."""
        cache = self.__dict__.setdefault("_gemm_kernels", {})
        key = (cfg, pack_a, pack_b)
        kern = cache.get(key)
        if kern is None:
            opts = cfg.options() + (f"-DA_PACKED={int(pack_a)}", f"-DB_PACKED={int(pack_b)}")
            kern = cache[key] = self._kern("gemm.cl", "gemm", opts, _GEMM_ARGS)
        return kern

    def _kern(self, file: str, name: str, options: tuple[str, ...], dtypes: list):
        k = self.rt.kernel(file, name, options)
        if not getattr(k, "_mao_dtypes_set", False):
            k.set_scalar_arg_dtypes(dtypes)
            k._mao_dtypes_set = True
        return k

    def _pack(self, buf, off, s_outer, s_inner, rows, k, kp, dst, cfg, which: str) -> None:
        """Pack op(A) (which="a", rows=M) or op(B) (which="b", rows=N) into ``dst``."""
        kern = self._kern("gemm_pack.cl", f"gemm_pack_{which}", cfg.pack_options(), _PACK_ARGS)
        kern.set_args(buf, off, s_outer, s_inner, rows, k, kp, dst)
        block = cfg.mr if which == "a" else cfg.nr
        grid = (-(-kp // _KC), -(-rows // block))
        cl.enqueue_nd_range_kernel(self.queue, kern, grid, (1, 1))

    def pack_b(self, b, trans_b: bool = False) -> PackedB:
        """Pack ``op(b)`` once for repeated ``gemm(a, packed)`` calls (e.g. inference).

        Example:
            >>> wp = be.pack_b(w)             # doctest: +SKIP
            >>> y = be.gemm(x, wp, bias=bias)  # doctest: +SKIP
            >>> wp.repack()                    # after w changed  # doctest: +SKIP
        """
        C.check_ndim("b", b, 2, "pack_b")
        return PackedB(self, b, trans_b)

    def _row_blocks(self, mb: int, nb: int, block_work: int) -> int:
        """Row blocks per work-item: ~64 Ki multiply-adds each, keeping >= 8 per unit."""
        cu = max(1, int(self.info.compute_units))
        rb = min(8, max(1, _WI_WORK // block_work))
        while rb > 1 and -(-mb // rb) * nb < 8 * cu:
            rb //= 2
        return rb

    def _split(self, mb: int, nb: int, k: int, ku: int) -> tuple[int, int]:
        """(S, kc): split K in S chunks of kc when the C grid alone cannot fill the device."""
        cu = max(1, int(self.info.compute_units))
        blocks = mb * nb
        if blocks >= 2 * cu or k < 1024:
            return 1, _kpad(k, ku)
        s = min(-(-4 * cu // blocks), k // 256)
        kc = _kpad(-(-k // s), ku)
        return -(-k // kc), kc

    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
             bias=None, activation="linear"):
        """out = act(alpha * op(a) @ op(b) + beta * out + bias), float32 (see NumpyBackend).

        a: (M, K) or (K, M) if trans_a; b: (K, N), (N, K) if trans_b, or a PackedB;
        bias: (N,); out: (M, N) with unit column stride. Returns out (allocated if None).
        """
        C.check_activation(activation, "gemm")
        C.check_ndim("a", a, 2, "gemm")
        a_off, a0, a1 = _elem_strides(a, "a")
        m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
        sam, sak = (a1, a0) if trans_a else (a0, a1)
        base = self.gemm_config
        if isinstance(b, PackedB):
            if trans_b:
                raise ConfigError("gemm: a PackedB already holds op(b); pass trans_b=False")
            if b.base != base:  # the configuration changed (tuning) since it was packed
                b = PackedB(self, b.source, b.trans_b)
            (k2, n), packed, bshape = b.shape, b, b.source.shape
        else:
            C.check_ndim("b", b, 2, "gemm")
            b_off, b0, b1 = _elem_strides(b, "b")
            k2, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
            packed, bshape = None, b.shape
        if k != k2:
            raise ShapeError(
                f"gemm: inner dimensions differ: op(a) is ({m}, {k}) (trans_a={trans_a}, "
                f"a.shape={tuple(a.shape)}), op(b) is ({k2}, {n}) (trans_b={trans_b}, "
                f"b.shape={tuple(bshape)})"
            )
        m, n, k = int(m), int(n), int(k)
        if out is None:
            if beta != 0:
                raise ConfigError("gemm: beta != 0 needs an 'out' array to accumulate into")
            out = self.empty((m, n), _F32)
        else:
            C.check_shape("out", out, (m, n), "gemm")
        c_off, c0, c1 = _elem_strides(out, "out")
        if c1 != 1 and n > 1:
            raise ShapeError(f"gemm: 'out' needs unit column stride; received {out.strides}")
        ldc = c0 if m > 1 else n
        if bias is not None:
            C.check_shape("bias", bias, (n,), "gemm")
            bias_off, bs, _ = _elem_strides(bias, "bias")
            if n > 1 and bs != 1:
                raise ShapeError(f"gemm: 'bias' must be contiguous; received {bias.strides}")
        if m == 0 or n == 0:
            return out
        if k == 0:  # an empty sum: out = act(beta * out + bias)
            a, sam, sak, a_off = out, 0, 0, 0  # any readable buffer; no k step runs
        cfg = b_config(base, n if n < 32 else 32)
        kp = _kpad(k, cfg.ku)
        mb, nb = -(-m // cfg.mr), -(-n // cfg.nr)
        b_off_k, ldb = 0, 0
        if packed is not None:
            bp, pack_b = packed.buffer, True
        else:
            sbk, sbn = (b1, b0) if trans_b else (b0, b1)
            small = k * n <= _SMALL_B or (m <= _THIN_M and k * n <= _THIN_B)
            pack_b = not (sbn == 1 and n >= cfg.nr and small and k > 0) \
                or b.base_data == out.base_data  # never read what this call overwrites
            if pack_b:
                bp = self._workspace("b", nb * kp * cfg.nr * 4)
                self._pack(b.base_data, b_off, sbk, sbn, n, k, kp, bp, cfg, "b")
            else:  # small row-major B: read in place, no packing launch
                bp, b_off_k, ldb = b.base_data, b_off, sbk
        # pack A when asked, or when its k-stride is long (transposed A: one line per k)
        # (a short K of a small transposed A stays in L2: x^T dz of a Dense layer's weight
        # gradient, 784x64 @ 64x300: 364 -> 317 us read in place on PoCL, 1 thread)
        long_a = sak != 1 and abs(sak) > 64 and nb > 1 and not (k <= _THIN_M
                                                                 and k * m <= _SMALL_A)
        pack_a = k > 0 and (cfg.pack_a or long_a or a.base_data == out.base_data)
        abuf = a.base_data
        if pack_a:
            abuf = self._workspace("a", mb * kp * cfg.mr * 4)
            self._pack(a.base_data, a_off, sam, sak, m, k, kp, abuf, cfg, "a")
        s, kc = self._split(mb, nb, k, cfg.ku)
        bias_buf = bias.base_data if bias is not None else None  # NULL: no bias
        bias_off = bias_off if bias is not None else 0
        act = _ACT_CODE[activation]
        kern = self._gemm_kernel(cfg, pack_a, pack_b)
        if s == 1:
            rb = self._row_blocks(mb, nb, cfg.mr * cfg.nr * max(k, 1))
            kern.set_args(m, n, k, kp, kc, abuf, a_off, sam, sak, bp, b_off_k, ldb,
                          out.base_data, c_off, ldc, alpha, beta, bias_buf, bias_off, act, 0,
                          rb)
            cl.enqueue_nd_range_kernel(self.queue, kern, (-(-mb // rb), nb), cfg.local_size())
        else:
            part = self._workspace("p", s * mb * cfg.mr * nb * cfg.nr * 4)
            kern.set_args(m, n, k, kp, kc, abuf, a_off, sam, sak, bp, b_off_k, ldb, part, 0,
                          0, alpha, beta, None, 0, 0, 1, 1)
            cl.enqueue_nd_range_kernel(self.queue, kern, (mb, nb, s), cfg.local_size(3))
            red = self._kern("gemm.cl", "gemm_splitk_reduce", (), _REDUCE_ARGS)
            red.set_args(n, s, mb * cfg.mr, nb * cfg.nr, part, out.base_data, c_off, ldc,
                         alpha, beta, bias_buf, bias_off, act)
            cl.enqueue_nd_range_kernel(self.queue, red, (m,), (1,))
        if activation == "softmax":
            sm_k = self._kern("gemm.cl", "gemm_softmax_rows", (), [None, _L, _I, _I])
            sm_k.set_args(out.base_data, c_off, ldc, n)
            cl.enqueue_nd_range_kernel(self.queue, sm_k, (m,), (1,))
        return out
