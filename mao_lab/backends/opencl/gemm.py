"""GemmMixin: the OpenCL backend's ``gemm`` (pack panels, register-blocked kernel, epilogue).

Both operands are packed into panels (kernels/gemm_pack.cl), which absorbs transposes,
strided views and offsets; ``pack_b`` keeps a packed right operand (weights) across calls.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl
import pyopencl.array as cla

from ...errors import ConfigError, DTypeError, ShapeError
from .. import _checks as C
from .tuner import GemmConfig, gemm_config

_ACT_CODE = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 0}
_F32 = np.dtype(np.float32)
_KC = 32  # k per packing work-item, as KC in kernels/gemm_pack.cl


def _elem_strides(a, name: str) -> tuple[int, int, int]:
    """(offset, row stride, column stride) of a 2-D float32 device array, in elements."""
    if not isinstance(a, cla.Array):
        raise DTypeError(
            f"gemm: '{name}' must be a device array (pyopencl.array.Array, e.g. from "
            f"backend.asarray); received {type(a).__module__}.{type(a).__name__}"
        )
    if a.dtype != _F32:
        raise DTypeError(
            f"gemm on OpenCL supports float32 only: '{name}' has dtype {a.dtype}. Convert with "
            "backend.asarray(x, dtype='float32'), or use the numpy backend for float64"
        )
    s0, s1 = (int(s) // 4 for s in a.strides)
    if a.offset % 4 or any(int(s) % 4 for s in a.strides):
        raise ShapeError(f"gemm: '{name}' has strides/offset not aligned to float32 elements")
    return int(a.offset) // 4, s0, s1


def _kpad(k: int, ku: int) -> int:
    """K rounded up to a multiple of the unroll (at least one step; padding is zeros)."""
    return max(ku, -(-k // ku) * ku)


class PackedB:
    """op(b) packed into column panels for gemm; reuse it while ``b`` does not change.

    Create with ``backend.pack_b(w, trans_b=...)`` and pass it to ``gemm`` as ``b``. After
    ``w`` changes (an optimizer step updates weights in place), call ``repack()``: the
    packed copy never follows the source by itself.
    """

    def __init__(self, backend, b, trans_b: bool) -> None:
        self.backend = backend
        self.source = b
        self.trans_b = bool(trans_b)
        _elem_strides(b, "b")
        k, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
        self.shape = (int(k), int(n))  # of op(b)
        self.dtype = _F32
        cfg = backend.gemm_config
        self.config = cfg
        self.kp = _kpad(self.shape[0], cfg.ku)
        nb = -(-self.shape[1] // cfg.nr)
        nbytes = max(4, nb * self.kp * cfg.nr * 4)
        self.buffer = cl.Buffer(backend.ctx, cl.mem_flags.READ_WRITE, nbytes)
        self.repack()

    def repack(self) -> PackedB:
        """Pack the source again (after it changed). Returns self."""
        b = self.source
        off, s0, s1 = _elem_strides(b, "b")
        sk, sn = (s1, s0) if self.trans_b else (s0, s1)
        self.backend._pack_b(b.base_data, off, sk, sn, self.shape[1], self.shape[0], self.kp,
                             self.buffer, self.config)
        return self


class GemmMixin:
    """``gemm`` and ``pack_b`` for OpenCLBackend (needs ``self.rt`` and ``self.queue``)."""

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

    # ---- workspace ------------------------------------------------------------------------
    def _workspace(self, slot: str, nbytes: int):
        """A scratch buffer of at least ``nbytes`` (grown, reused: the queue is in order)."""
        ws = self.__dict__.setdefault("_gemm_ws", {})
        buf = ws.get(slot)
        if buf is None or buf.size < nbytes:
            buf = cl.Buffer(self.ctx, cl.mem_flags.READ_WRITE, max(nbytes, 4096))
            ws[slot] = buf
        return buf

    def _kern(self, file: str, name: str, options: tuple[str, ...], dtypes: list):
        k = self.rt.kernel(file, name, options)
        if not getattr(k, "_mao_dtypes_set", False):
            k.set_scalar_arg_dtypes(dtypes)
            k._mao_dtypes_set = True
        return k

    def _pack_a(self, buf, off, sm, sk, m, k, kp, dst, cfg: GemmConfig) -> None:
        kern = self._kern("gemm_pack.cl", "gemm_pack_a", cfg.pack_options(),
                          [None, np.int64, np.int64, np.int64, np.int32, np.int32, np.int32,
                           None])
        kern.set_args(buf, off, sm, sk, m, k, kp, dst)
        grid = (-(-kp // _KC), -(-m // cfg.mr))
        cl.enqueue_nd_range_kernel(self.queue, kern, grid, (1, 1))

    def _pack_b(self, buf, off, sk, sn, n, k, kp, dst, cfg: GemmConfig) -> None:
        kern = self._kern("gemm_pack.cl", "gemm_pack_b", cfg.pack_options(),
                          [None, np.int64, np.int64, np.int64, np.int32, np.int32, np.int32,
                           None])
        kern.set_args(buf, off, sk, sn, n, k, kp, dst)
        grid = (-(-kp // _KC), -(-n // cfg.nr))
        cl.enqueue_nd_range_kernel(self.queue, kern, grid, (1, 1))

    # ---- public -------------------------------------------------------------------------
    def pack_b(self, b, trans_b: bool = False) -> PackedB:
        """Pack ``op(b)`` once for repeated ``gemm(a, packed)`` calls (e.g. inference).

        Example:
            >>> wp = be.pack_b(w)             # doctest: +SKIP
            >>> y = be.gemm(x, wp, bias=bias)  # doctest: +SKIP
            >>> wp.repack()                    # after w changed  # doctest: +SKIP
        """
        C.check_ndim("b", b, 2, "pack_b")
        return PackedB(self, b, trans_b)

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
        sm, sk = (a1, a0) if trans_a else (a0, a1)
        cfg = self.gemm_config
        if isinstance(b, PackedB):
            if trans_b:
                raise ConfigError("gemm: a PackedB already holds op(b); pass trans_b=False")
            if b.config != cfg:  # the configuration changed (tuning) since it was packed
                b = PackedB(self, b.source, b.trans_b)
            k2, n = b.shape
            packed = b
        else:
            C.check_ndim("b", b, 2, "gemm")
            b_off, b0, b1 = _elem_strides(b, "b")
            k2, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
            packed = None
        if k != k2:
            bshape = b.source.shape if isinstance(b, PackedB) else b.shape
            raise ShapeError(
                f"gemm: inner dimensions differ: op(a) is ({m}, {k}) (trans_a={trans_a}, "
                f"a.shape={tuple(a.shape)}), op(b) is ({k2}, {n}) (trans_b={trans_b}, "
                f"b.shape={tuple(bshape)})"
            )
        m, n, k = int(m), int(n), int(k)
        if out is None:
            if beta != 0:
                raise ConfigError("gemm: beta != 0 needs an 'out' array to accumulate into")
            out = cla.empty(self.queue, (m, n), _F32)
        else:
            C.check_shape("out", out, (m, n), "gemm")
        c_off, c0, c1 = _elem_strides(out, "out")
        if c1 != 1 and n > 1:
            raise ShapeError(
                f"gemm: 'out' needs unit column stride; received strides {out.strides}"
            )
        if bias is not None:
            C.check_shape("bias", bias, (n,), "gemm")
            if not isinstance(bias, cla.Array) or bias.dtype != _F32:
                _elem_strides(bias.reshape(1, n), "bias")  # raises the dtype/type error
            if n > 1 and bias.strides[0] != 4:
                raise ShapeError(f"gemm: 'bias' must be contiguous; received {bias.strides}")
        if m == 0 or n == 0:
            return out
        kp = _kpad(k, cfg.ku)
        mb, nb = -(-m // cfg.mr), -(-n // cfg.nr)
        ap = self._workspace("a", mb * kp * cfg.mr * 4)
        self._pack_a(a.base_data, a_off, sm, sk, m, k, kp, ap, cfg)
        if packed is None:
            bp = self._workspace("b", nb * kp * cfg.nr * 4)
            sbk, sbn = (b1, b0) if trans_b else (b0, b1)
            self._pack_b(b.base_data, b_off, sbk, sbn, n, k, kp, bp, cfg)
        else:
            bp = packed.buffer
            if packed.kp != kp:
                raise ShapeError("gemm: PackedB was packed for another K")  # invariant
        act = _ACT_CODE[activation]
        opts = cfg.options() + (f"-DACT={act}", f"-DHAS_BIAS={int(bias is not None)}")
        kern = self._kern("gemm.cl", "gemm", opts,
                          [np.int32, np.int32, np.int32, None, None, None, np.int32, np.int32,
                           np.float32, np.float32, None, np.int32])
        kern.set_args(m, n, kp, ap, bp, out.base_data, c_off, c0 if m > 1 else n,
                      alpha, beta, bias.base_data if bias is not None else ap,
                      int(bias.offset) // 4 if bias is not None else 0)
        cl.enqueue_nd_range_kernel(self.queue, kern, (mb, nb), cfg.local_size())
        if activation == "softmax":
            sm_k = self._kern("gemm.cl", "gemm_softmax_rows", opts,
                              [None, np.int32, np.int32, np.int32])
            sm_k.set_args(out.base_data, c_off, c0 if m > 1 else n, n)
            cl.enqueue_nd_range_kernel(self.queue, sm_k, (m,), (1,))
        return out
