"""GemmMixin: the OpenCL backend's ``gemm`` (packing, register-blocked kernel, epilogue).

B is packed into column panels (kernels/gemm_pack.cl), which absorbs transposes, strided
views and offsets (a tiny row-major B is read in place). A is read in place through its
strides, and packed into row panels only when its k-stride is long. Narrow outputs get a
narrow register block (4 rows when tall), few long rows one or two row blocks over L2
slabs of K, short-K products several row blocks per work-item, long-K/small-C products
split K; ``tune_gemm_shapes`` picks override these rules per shape. Each call signature's
decisions are kept as a launch plan. ``pack_b`` keeps a packed right operand (weights).
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from ...errors import ConfigError, ShapeError
from .. import _checks as C
from .gemm_blocks import PackedB, _elem_strides, _kpad, b_config, tall_config, thin_config
from .tuner import GemmConfig, gemm_config, shape_configs

__all__ = ["GemmMixin", "PackedB"]

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
_TALL_M = 1024  # rows from which a narrow output (N < 32) gets 4-row blocks
_LONG_K = 1024  # K from which a few rows (M <= 16) get one row block of their own
_L2_SLAB = 1 << 16  # elements of B (256 KB) one K slab of a thin product spans
_REDUCE_ARGS = [_I, _I, _I, _I, None, None, _L, _I, _F, _F, None, _L, _I]
_PACK_ARGS = [None, _L, _L, _L, _I, _I, _I, None]


_REUSE_ARGS = True


def _set_args(kern, *args) -> None:
    """Set a gemm-family kernel's arguments, unless its last launch had the same ones
    (a training step repeats its GEMMs on the same pooled buffers: ~3 us saved a launch).
    Every launch of these kernel objects goes through here, so the record stays true."""
    if not _REUSE_ARGS or getattr(kern, "_mao_args", None) != args:
        kern.set_args(*args)
        kern._mao_args = args


class _Plan:
    """How one gemm call signature runs: kernels, grids and the arguments fixed by it."""

    __slots__ = ("m", "n", "k", "ldc", "act", "softmax", "kp", "kc", "sam", "sak", "ldb",
                 "b_mode", "pack_a", "pack_b", "kern", "grid", "local2", "local3", "rb",
                 "reduce", "bytes_a", "bytes_b", "bytes_p")

    def __init__(self, m: int, n: int, k: int, ldc: int, act: int, softmax) -> None:
        self.m, self.n, self.k, self.ldc, self.act, self.softmax = m, n, k, ldc, act, softmax
        self.kp = self.kc = self.sam = self.sak = self.ldb = self.rb = 0
        self.b_mode, self.pack_a, self.pack_b, self.kern, self.reduce = "", None, None, None, None
        self.grid, self.local2, self.local3 = (), None, None
        self.bytes_a = self.bytes_b = self.bytes_p = 0


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
        self.__dict__.pop("_gemm_plans", None)  # plans hold kernels of the old block

    @property
    def shape_configs(self) -> dict:
        """Register blocks chosen per (M, N, K, trans_a, trans_b) by ``tune_gemm_shapes``
        (cached on disk); shapes not listed follow the backend's rules."""
        cfgs = self.__dict__.get("_shape_cfgs")
        if cfgs is None:
            cfgs = self._shape_cfgs = shape_configs(self)
        return cfgs

    @shape_configs.setter
    def shape_configs(self, cfgs: dict) -> None:
        self._shape_cfgs = dict(cfgs)
        self.__dict__.pop("_gemm_plans", None)

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

    def _pack_kernel(self, cfg: GemmConfig, which: str):
        """The kernel packing op(A) (which="a") or op(B) (which="b") for ``cfg``'s block."""
        return self._kern("gemm_pack.cl", f"gemm_pack_{which}", cfg.pack_options(), _PACK_ARGS)

    def _pack(self, buf, off, s_outer, s_inner, rows, k, kp, dst, cfg, which: str) -> None:
        """Pack op(A) (which="a", rows=M) or op(B) (which="b", rows=N) into ``dst``."""
        kern = self._pack_kernel(cfg, which)
        _set_args(kern, buf, off, s_outer, s_inner, rows, k, kp, dst)
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
        The launch plan of each call signature (shapes, strides, flags) is cached, so a
        repeated call only sets arguments and enqueues.
        """
        if type(b) is PackedB and b.base != self.gemm_config and not trans_b:
            b = PackedB(self, b.source, b.trans_b)  # the configuration changed since packing
        try:
            key = (type(a), a.shape, a.strides, a.dtype, type(b), b.shape,
                   getattr(b, "strides", None), b.dtype, trans_a, trans_b, activation,
                   None if out is None else (
                       type(out), out.shape, out.strides, out.dtype,
                       a.base_data == out.base_data,
                       getattr(b, "base_data", None) == out.base_data),
                   None if bias is None else (type(bias), bias.shape, bias.strides, bias.dtype))
        except AttributeError:  # not a device array: the full checks say what is wrong
            key = None
        plans = self.__dict__.setdefault("_gemm_plans", {})
        plan = plans.get(key)
        if plan is None:
            plan = self._gemm_plan(a, b, trans_a, trans_b, beta, out, bias, activation)
            if key is not None and len(plans) < 512:
                plans[key] = plan
        return self._gemm_run(plan, a, b, alpha, beta, out, bias)

    def _gemm_plan(self, a, b, trans_a, trans_b, beta, out, bias, activation) -> _Plan:
        """Check one call signature and decide how it runs (packing, block, grid, split)."""
        C.check_activation(activation, "gemm")
        C.check_ndim("a", a, 2, "gemm")
        _, a0, a1 = _elem_strides(a, "a")
        m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
        sam, sak = (a1, a0) if trans_a else (a0, a1)
        base = self.gemm_config
        if isinstance(b, PackedB):
            if trans_b:
                raise ConfigError("gemm: a PackedB already holds op(b); pass trans_b=False")
            (k2, n), packed, bshape = b.shape, b, b.source.shape
        else:
            C.check_ndim("b", b, 2, "gemm")
            _, b0, b1 = _elem_strides(b, "b")
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
            ldc = n
        else:
            C.check_shape("out", out, (m, n), "gemm")
            _, c0, c1 = _elem_strides(out, "out")
            if c1 != 1 and n > 1:
                raise ShapeError(f"gemm: 'out' needs unit column stride; received {out.strides}")
            ldc = c0 if m > 1 else n
        if bias is not None:
            C.check_shape("bias", bias, (n,), "gemm")
            _, bs, _ = _elem_strides(bias, "bias")
            if n > 1 and bs != 1:
                raise ShapeError(f"gemm: 'bias' must be contiguous; received {bias.strides}")
        p = _Plan(m, n, k, ldc, _ACT_CODE[activation], activation == "softmax")
        if m == 0 or n == 0:
            return p
        if k == 0:  # an empty sum: out = act(beta * out + bias); A is never read
            sam = sak = 0
        cfg = b_config(base, n if n < 32 else 32)
        thin = m <= 16 and k >= _LONG_K and packed is None
        tuned = None if packed else self.shape_configs.get((m, n, k, bool(trans_a),
                                                             bool(trans_b)))
        if tuned is not None:  # a block picked for this very shape by tune_gemm_shapes
            cfg, thin = tuned, False
        elif thin:
            cfg = thin_config(base, m, n)
        elif m >= _TALL_M and n < 32 and packed is None:
            cfg = tall_config(cfg)
        p.kp = kp = _kpad(k, cfg.ku)
        mb, nb = -(-m // cfg.mr), -(-n // cfg.nr)
        alias_b = out is not None and packed is None and b.base_data == out.base_data
        alias_a = out is not None and a.base_data == out.base_data
        if packed is not None:
            p.b_mode, pack_b = "packed", True
        else:
            sbk, sbn = (b1, b0) if trans_b else (b0, b1)
            # packing B pays when several row blocks reuse it; one or two only stream it
            small = k * n <= _SMALL_B or (m <= _THIN_M and (k * n <= _THIN_B or mb <= 2))
            pack_b = not (sbn == 1 and n >= cfg.nr and small and k > 0) or alias_b
            if pack_b:  # op(B) into column panels in a workspace, every call
                p.b_mode, p.bytes_b = "pack", nb * kp * cfg.nr * 4
                p.pack_b = (self._pack_kernel(cfg, "b"), (-(-kp // _KC), nb), sbk, sbn)
            else:  # small row-major B: read in place, no packing launch
                p.b_mode, p.ldb = "inplace", sbk
        # pack A when asked, or when its k-stride is long (transposed A: one line per k)
        # (a short K of a small transposed A stays in L2: x^T dz of a Dense layer's weight
        # gradient, 784x64 @ 64x300: 364 -> 317 us read in place on PoCL, 1 thread)
        long_a = sak != 1 and abs(sak) > 64 and nb > 1 and not (k <= _THIN_M
                                                                 and k * m <= _SMALL_A)
        pack_a = k > 0 and (cfg.pack_a or long_a or alias_a)
        if pack_a:
            p.bytes_a = mb * kp * cfg.mr * 4
            p.pack_a = (self._pack_kernel(cfg, "a"), (-(-kp // _KC), mb), sam, sak)
        p.sam, p.sak = sam, sak
        p.kern = self._gemm_kernel(cfg, pack_a, pack_b)
        p.local2, p.local3 = cfg.local_size(), cfg.local_size(3)
        s, p.kc = self._split(mb, nb, k, cfg.ku)
        if thin and p.b_mode == "inplace" and nb > 1:
            # neighbouring column blocks share B's cache lines: walk K in slabs that stay
            # in L2 while every column block reads them (B then streams from memory once)
            kc = _kpad(max(256, _L2_SLAB // n), cfg.ku)
            if kc < p.kc:
                s, p.kc = -(-k // kc), kc
        if s == 1:
            p.rb = self._row_blocks(mb, nb, cfg.mr * cfg.nr * max(k, 1))
            p.grid = (-(-mb // p.rb), nb)
        else:
            p.rb, p.grid, p.bytes_p = 1, (mb, nb, s), s * mb * cfg.mr * nb * cfg.nr * 4
            p.reduce = (self._kern("gemm.cl", "gemm_splitk_reduce", (), _REDUCE_ARGS),
                        mb * cfg.mr, nb * cfg.nr, s)
        if p.softmax:
            p.softmax = self._kern("gemm.cl", "gemm_softmax_rows", (), [None, _L, _I, _I])
        return p

    def _gemm_run(self, p: _Plan, a, b, alpha, beta, out, bias):
        """Enqueue one planned gemm: packing launches, the product, split-K, softmax."""
        if out is None:
            if beta != 0:
                raise ConfigError("gemm: beta != 0 needs an 'out' array to accumulate into")
            out = self.empty((p.m, p.n), _F32)
        if p.kern is None:  # M or N is 0
            return out
        queue, enqueue = self.queue, cl.enqueue_nd_range_kernel
        cbuf, c_off = out.base_data, out.offset >> 2
        if p.b_mode == "packed":
            bp, b_off = b.buffer, 0
        elif p.b_mode == "pack":
            bp, b_off = self._workspace("b", p.bytes_b), 0
            kern, grid, sk, sn = p.pack_b
            _set_args(kern, b.base_data, b.offset >> 2, sk, sn, p.n, p.k, p.kp, bp)
            enqueue(queue, kern, grid, (1, 1))
        else:
            bp, b_off = b.base_data, b.offset >> 2
        abuf, a_off = (a.base_data, a.offset >> 2) if p.k else (cbuf, 0)
        if p.pack_a is not None:
            kern, grid, sm, sk = p.pack_a
            dst = self._workspace("a", p.bytes_a)
            _set_args(kern, abuf, a_off, sm, sk, p.m, p.k, p.kp, dst)
            enqueue(queue, kern, grid, (1, 1))
            abuf = dst
        bias_buf, bias_off = (None, 0) if bias is None else (bias.base_data, bias.offset >> 2)
        if p.reduce is None:
            _set_args(p.kern, p.m, p.n, p.k, p.kp, p.kc, abuf, a_off, p.sam, p.sak, bp, b_off,
                      p.ldb, cbuf, c_off, p.ldc, alpha, beta, bias_buf, bias_off, p.act, 0,
                      p.rb)
            enqueue(queue, p.kern, p.grid, p.local2)
        else:
            red, mpad, ldp, s = p.reduce
            part = self._workspace("p", p.bytes_p)
            _set_args(p.kern, p.m, p.n, p.k, p.kp, p.kc, abuf, a_off, p.sam, p.sak, bp, b_off,
                      p.ldb, part, 0, 0, alpha, beta, None, 0, 0, 1, 1)
            enqueue(queue, p.kern, p.grid, p.local3)
            _set_args(red, p.n, s, mpad, ldp, part, cbuf, c_off, p.ldc, alpha, beta, bias_buf,
                      bias_off, p.act)
            enqueue(queue, red, (p.m,), (1,))
        if p.softmax:
            _set_args(p.softmax, cbuf, c_off, p.ldc, p.n)
            enqueue(queue, p.softmax, (p.m,), (1,))
        return out
