"""ConvMixin: conv2d forward (+bias+activation), backward data and backward filter.

Two algorithms, picked per shape (``backend.conv_algorithm`` = "auto", "direct" or
"im2col"): direct kernels for stride-1 convolutions with few channels
(kernels/conv_direct.cl; backward data runs the forward kernel on zero-padded dy with
flipped weights) and im2col + the tuned GEMM for the rest (kernels/conv.cl). Strides other
than 1 always take im2col. benchmarks/conv.py measures both (docs/bench-conv.md).
"""

from __future__ import annotations

from ...errors import ConfigError
from .. import _checks as C
from .ops_launch import f32, i32

_ACT = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}
_ALGOS = ("auto", "direct", "im2col")
_DIRECT_MAX_TAPS = 2304  # input channels x kernel taps summed per output (256 x 3x3)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


_ROWS = 2  # output rows per work-item of the direct forward (each weight load feeds both)


def _rows_needed(oh: int, sh: int, kh: int) -> int:
    """Input rows the direct forward reads for ``oh`` outputs (whole groups of _ROWS)."""
    return (_ceil(oh, _ROWS) * _ROWS - 1) * sh + kh


def _fb(f: int) -> int:
    """Filters per work-item of the direct forward: the largest divisor of f up to 8."""
    return max(d for d in range(1, 9) if f % d == 0)


class ConvMixin:
    """Convolution primitives; see NumpyBackend for the specification of each."""

    conv_algorithm: str = "auto"

    def _conv_algo(self, c, f, kh, kw, stride, padding, pass_: str) -> str:
        algo = self.conv_algorithm
        if algo not in _ALGOS:
            raise ConfigError(
                f"conv_algorithm must be one of {', '.join(_ALGOS)}; received {algo!r}"
            )
        direct_ok = tuple(stride) == (1, 1)
        if pass_ == "data":  # the transposed convolution needs padding < kernel
            pt, pb, pl, pr = padding
            direct_ok = direct_ok and max(pt, pb) < kh and max(pl, pr) < kw
        if not direct_ok:
            return "im2col"
        if algo != "auto":
            return algo
        # The direct kernels beat im2col + GEMM at every stride-1 shape benchmarks/conv.py
        # measures (LeNet up to 32->64 3x3, docs/bench-conv.md): im2col writes KH*KW copies
        # of x and its GEMMs are thin. Very deep inputs keep the GEMM's register blocking.
        taps = (f if pass_ == "data" else c) * kh * kw
        return "direct" if taps <= _DIRECT_MAX_TAPS else "im2col"

    # ---- shared pieces --------------------------------------------------------------------
    def _pad(self, src, n, h, w, hp, wp, pt, pl, slot):
        """src viewed (n, h, w) zero-padded into scratch ``slot`` (or a pool array if None)
        (n, hp, wp) at offset (pt, pl)."""
        dst = self.empty((n, hp, wp)) if slot is None else self._scratch(slot, (n, hp, wp))
        self._launch1("conv.cl", "conv2d_pad", n * hp,
                      (src, dst, *map(i32, (n, h, w, hp, wp, pt, pl))))
        return dst

    def _direct(self, xp, w, bias, y, c, f, kh, kw, hp, wp, oh, ow, sh, act, rows=None):
        """The direct forward kernel on an already padded input whose rows outside
        ``rows`` = (first, end) are zero (None: any row may be nonzero)."""
        fb = _fb(f)
        opts = (f"-DC={c}", f"-DF={f}", f"-DKH={kh}", f"-DKW={kw}", f"-DFB={fb}",
                f"-DR={_ROWS}", f"-DACT={act}", f"-DHAS_BIAS={int(bias is not None)}")
        b = y.shape[0]
        self._launch("conv_direct.cl", "conv2d_forward_direct",
                     (_ceil(oh, _ROWS), b * (f // fb)), (1, 1),
                     (xp, w, w if bias is None else bias, y,
                      *map(i32, (hp, wp, oh, ow, sh, *(rows or (0, hp))))), opts)

    def _pad_x(self, x, b, c, h, w, padding, oh, ow, sh, kh, kw, keep=False):
        """x zero-padded for the direct kernels: every 8-wide load stays inside a row and
        every row a work-item reads exists. ``keep``: a pool array (a backward reuses it)
        instead of scratch."""
        pt, pb, pl, pr = padding
        hp = max(h + pt + pb, _rows_needed(oh, sh, kh))
        wp = max(w + pl + pr, _ceil(ow, 8) * 8 + kw - 1)
        if (hp, wp) == (h, w):
            return x, hp, wp
        return self._pad(x, b * c, h, w, hp, wp, pt, pl, None if keep else "conv_xp"), hp, wp

    @staticmethod
    def _data_layout(h, w, oh, ow, kh, kw, padding):
        """(Hd, Wd, top, left): the zero-padded dy planes the direct data gradient reads
        (dy at row top, column left; a full correlation needs KH-1-pad rows above)."""
        pt, pl = kh - 1 - padding[0], kw - 1 - padding[2]
        hd = max(oh + pt + kh - 1 - padding[1], _rows_needed(h, 1, kh))
        wd = max(ow + pl + kw - 1 - padding[3], _ceil(w, 8) * 8 + kw - 1)
        return hd, wd, pt, pl

    def _backward_data_direct(self, dyp, hd, wd, rows, w, dx):
        """dx (B, C, H, W) = full correlation of the padded dy planes dyp (B*F, hd, wd),
        zero outside ``rows`` = (first, end), with the flipped, transposed kernel w
        (F, C, KH, KW)."""
        f, c, kh, kw = (int(s) for s in w.shape)
        wf = self._scratch("conv_wflip", (c, f, kh, kw))
        self._launch1("conv.cl", "conv2d_flip_weights", f * c * kh * kw,
                      (w, wf, i32(f), i32(c), i32(kh), i32(kw)))
        self._direct(dyp, wf, None, dx, f, c, kh, kw, hd, wd, dx.shape[2], dx.shape[3], 1, 0,
                     rows)

    def _backward_filter_direct(self, dyp, dy_layout, xp, hp, wp, dw, bohw, sh, beta):
        """dw (F, C, KH, KW) = correlation of xp (B, C, hp, wp) with dy (B, F, OH, OW),
        accumulated with beta; bohw = (B, OH, OW). dy_layout = (offset, row stride, plane
        stride) of dy inside dyp, every row zero up to ceil(OW/8)*8 columns."""
        f, c, kh, kw = (int(s) for s in dw.shape)
        b, oh, ow = bohw
        # filters per work-item: x loads shared by fb filters, <= 20 float8 accumulators
        fb = max(d for d in range(1, 5) if f % d == 0 and d * kw <= 20) if kw <= 20 else 1
        self._launch("conv_direct.cl", "conv2d_backward_filter_direct", (kh, c, f // fb),
                     (1, 1, 1),
                     (dyp, xp, dw, *map(i32, (b, hp, wp, oh, _ceil(ow, 8) * 8, sh)), f32(beta),
                      *map(i32, dy_layout)),
                     (f"-DC={c}", f"-DF={f}", f"-DKH={kh}", f"-DKW={kw}", f"-DFB={fb}"))

    def _im2col(self, x, b, c, h, w, kh, kw, sh, sw, pt, pl, oh, ow):
        cols = self._scratch("conv_cols", (b * oh * ow, c * kh * kw))
        self._launch1("conv.cl", "conv2d_im2col", b * oh * ow * c,
                      (x, cols, *map(i32, (b, c, h, w, kh, kw, sh, sw, pt, pl, oh, ow))))
        return cols

    def _prep(self, x_shape, w_shape, stride, padding):
        b, c, h, w = (int(s) for s in x_shape)
        f, _, kh, kw = (int(s) for s in w_shape)
        return b, c, h, w, f, kh, kw, tuple(int(s) for s in stride), tuple(
            int(p) for p in padding)

    # ---- forward --------------------------------------------------------------------------
    def conv2d_forward(self, x, w, bias=None, *, stride=(1, 1), padding=(0, 0, 0, 0),
                       activation="linear"):
        """x: (B, C, H, W), w: (F, C, KH, KW), bias: (F,) -> act(conv + bias) (B, F, OH, OW)."""
        op = "conv2d_forward"
        oh, ow = C.conv_dims(x.shape, w.shape, stride, padding, op)
        C.check_activation(activation, op)
        C.check_same_dtype(op, x=x, w=w, bias=bias)
        x, w = self._dev(x, "x", op), self._dev(w, "w", op)
        b, c, h, wd, f, kh, kw, st, pad = self._prep(x.shape, w.shape, stride, padding)
        if bias is not None:
            C.check_shape("bias", bias, (f,), op)
            bias = self._dev(bias, "bias", op)
        act = _ACT.get(activation, 0)  # softmax runs after, over the last axis like numpy
        y = self.empty((b, f, oh, ow))
        if self._conv_algo(c, f, kh, kw, st, pad, "forward") == "direct":
            xp, hp, wp = self._pad_x(x, b, c, h, wd, pad, oh, ow, st[0], kh, kw)
            self._direct(xp, w, bias, y, c, f, kh, kw, hp, wp, oh, ow, st[0], act,
                         (pad[0], pad[0] + h))
        else:
            cols = self._im2col(x, b, c, h, wd, kh, kw, *st, pad[0], pad[2], oh, ow)
            t = self._scratch("conv_t", (b * oh * ow, f))
            self.gemm(cols, w.reshape(f, c * kh * kw), trans_b=True, bias=bias,
                      activation="linear" if activation == "softmax" else activation, out=t)
            self._launch1("conv.cl", "conv2d_transpose021", b * f,
                          (t, y, i32(b), i32(oh * ow), i32(f)))
        if activation == "softmax":
            self.activation_forward(y, "softmax", out=y)
        return y

    # ---- backward -------------------------------------------------------------------------
    def conv2d_backward_data(self, dy, w, x_shape, *, stride=(1, 1), padding=(0, 0, 0, 0)):
        """dx (B, C, H, W) from dy (B, F, OH, OW) and w (F, C, KH, KW)."""
        op = "conv2d_backward_data"
        oh, ow = C.conv_dims(x_shape, w.shape, stride, padding, op)
        C.check_shape("dy", dy, (x_shape[0], w.shape[0], oh, ow), op)
        dy, w = self._dev(dy, "dy", op), self._dev(w, "w", op)
        b, c, h, wd, f, kh, kw, st, pad = self._prep(x_shape, w.shape, stride, padding)
        dx = self.empty((b, c, h, wd))
        if self._conv_algo(c, f, kh, kw, st, pad, "data") == "direct":
            hd, wdd, pt, pl = self._data_layout(h, wd, oh, ow, kh, kw, pad)
            dyp = self._pad(dy, b * f, oh, ow, hd, wdd, pt, pl, "conv_dyp")
            self._backward_data_direct(dyp, hd, wdd, (pt, pt + oh), w, dx)
            return dx
        dyt = self._scratch("conv_t", (b * oh * ow, f))
        self._launch1("conv.cl", "conv2d_transpose021", b * oh * ow,
                      (dy, dyt, i32(b), i32(f), i32(oh * ow)))
        dcols = self._scratch("conv_cols", (b * oh * ow, c * kh * kw))
        self.gemm(dyt, w.reshape(f, c * kh * kw), out=dcols)
        self._launch1("conv.cl", "conv2d_col2im", b * c * h * wd,
                      (dcols, dx, *map(i32, (b, c, h, wd, kh, kw, *st, pad[0], pad[2], oh, ow))))
        return dx

    def conv2d_backward_filter(self, dy, x, w_shape, *, stride=(1, 1), padding=(0, 0, 0, 0),
                               out=None, beta: float = 0.0):
        """dw (F, C, KH, KW) from dy (B, F, OH, OW) and x; out = dw + beta * out."""
        op = "conv2d_backward_filter"
        oh, ow = C.conv_dims(x.shape, w_shape, stride, padding, op)
        C.check_shape("dy", dy, (x.shape[0], w_shape[0], oh, ow), op)
        C.check_same_dtype(op, dy=dy, x=x, out=out)
        dy, x = self._dev(dy, "dy", op), self._dev(x, "x", op)
        b, c, h, wd, f, kh, kw, st, pad = self._prep(x.shape, w_shape, stride, padding)
        if out is None:
            beta = 0.0
        dw = self._out(out, (f, c, kh, kw), "out", op)
        if self._conv_algo(c, f, kh, kw, st, pad, "filter") == "direct":
            xp, hp, wp = self._pad_x(x, b, c, h, wd, pad, oh, ow, st[0], kh, kw)
            owp = _ceil(ow, 8) * 8
            dyp = dy if owp == ow else self._pad(dy, b * f, oh, ow, oh, owp, 0, 0, "conv_dyp")
            self._backward_filter_direct(dyp, (0, owp, oh * owp), xp, hp, wp, dw, (b, oh, ow),
                                         st[0], beta)
            return dw
        cols = self._im2col(x, b, c, h, wd, kh, kw, *st, pad[0], pad[2], oh, ow)
        dyf = self._scratch("conv_t", (f, b * oh * ow))
        self._launch1("conv.cl", "conv2d_transpose102", b * f,
                      (dy, dyf, i32(f), i32(b), i32(oh * ow)))
        self.gemm(dyf, cols, out=dw.reshape(f, c * kh * kw), beta=beta)
        return dw
