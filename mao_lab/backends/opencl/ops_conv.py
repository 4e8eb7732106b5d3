"""ConvMixin: conv2d forward (+bias+activation), backward data and backward filter.

Two algorithms per pass, picked per shape (``backend.conv_algorithm`` = "auto", "direct"
or "im2col"): a direct kernel for small channel counts (kernels/conv_direct.cl) and
im2col + the tuned GEMM (kernels/conv.cl) for the rest. benchmarks/conv.py measures both.
"""

from __future__ import annotations

from ...errors import ConfigError
from .. import _checks as C
from .ops_launch import f32, i32

_ACT = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}
_ALGOS = ("auto", "direct", "im2col")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class ConvMixin:
    """Convolution primitives; see NumpyBackend for the specification of each."""

    conv_algorithm: str = "auto"

    def _conv_algo(self, c: int, f: int, kk: int, pass_: str) -> str:
        algo = self.conv_algorithm
        if algo not in _ALGOS:
            raise ConfigError(
                f"conv_algorithm must be one of {', '.join(_ALGOS)}; received {algo!r}"
            )
        if algo != "auto":
            return algo
        # Direct kernels win while the GEMM would be thin (few channels x taps or filters);
        # measured by benchmarks/conv.py (docs/bench-conv.md).
        if pass_ == "forward":
            return "direct" if c * kk <= 160 or f <= 16 else "im2col"
        if pass_ == "data":
            return "direct" if f * kk <= 400 else "im2col"
        return "direct" if c * f * kk <= 4096 else "im2col"

    def _geom(self, x_shape, w_shape, stride, padding):
        b, c, h, w = (int(s) for s in x_shape)
        f, _, kh, kw = (int(s) for s in w_shape)
        sh, sw = (int(s) for s in stride)
        pt, pb, pl, pr = (int(p) for p in padding)
        return b, c, h, w, f, kh, kw, sh, sw, pt, pl

    def _direct_opts(self, c, f, kh, kw, sh, sw, pt, pl, fb=1, act=0, has_bias=0):
        return (f"-DC={c}", f"-DF={f}", f"-DKH={kh}", f"-DKW={kw}", f"-DSH={sh}",
                f"-DSW={sw}", f"-DPT={pt}", f"-DPL={pl}", f"-DFB={fb}", f"-DACT={act}",
                f"-DHAS_BIAS={has_bias}")

    def _im2col(self, x, b, c, h, w, kh, kw, sh, sw, pt, pl, oh, ow):
        cols = self._scratch("conv_cols", (b * oh * ow, c * kh * kw))
        self._launch("conv.cl", "conv2d_im2col", (b * oh * ow, c), None,
                     (x, cols, *map(i32, (b, c, h, w, kh, kw, sh, sw, pt, pl, oh, ow))))
        return cols

    # ---- forward --------------------------------------------------------------------------
    def conv2d_forward(self, x, w, bias=None, *, stride=(1, 1), padding=(0, 0, 0, 0),
                       activation="linear"):
        """x: (B, C, H, W), w: (F, C, KH, KW), bias: (F,) -> act(conv + bias) (B, F, OH, OW)."""
        op = "conv2d_forward"
        oh, ow = C.conv_dims(x.shape, w.shape, stride, padding, op)
        C.check_activation(activation, op)
        C.check_same_dtype(op, x=x, w=w, bias=bias)
        x = self._dev(x, "x", op)
        w = self._dev(w, "w", op)
        b, c, h, wd, f, kh, kw, sh, sw, pt, pl = self._geom(x.shape, w.shape, stride, padding)
        if bias is not None:
            C.check_shape("bias", bias, (f,), op)
            bias = self._dev(bias, "bias", op)
        act = _ACT.get(activation, 0)  # softmax runs after, over the last axis like numpy
        y = self.empty((b, f, oh, ow))
        if self._conv_algo(c, f, kh * kw, "forward") == "direct":
            fb = min(f, 8)
            opts = self._direct_opts(c, f, kh, kw, sh, sw, pt, pl, fb, act, int(bias is not None))
            self._launch("conv_direct.cl", "conv2d_forward_direct",
                         (_ceil(ow, 8), oh, b * _ceil(f, fb)), None,
                         (x, w, w if bias is None else bias, y, i32(b), i32(h), i32(wd),
                          i32(oh), i32(ow)), opts)
        else:
            cols = self._im2col(x, b, c, h, wd, kh, kw, sh, sw, pt, pl, oh, ow)
            t = self._scratch("conv_t", (b * oh * ow, f))
            self.gemm(cols, w.reshape(f, c * kh * kw), trans_b=True, bias=bias,
                      activation="linear" if activation == "softmax" else activation, out=t)
            self._launch("conv.cl", "conv2d_transpose021", (oh * ow, f, b), None,
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
        dy = self._dev(dy, "dy", op)
        w = self._dev(w, "w", op)
        b, c, h, wd, f, kh, kw, sh, sw, pt, pl = self._geom(x_shape, w.shape, stride, padding)
        dx = self.empty((b, c, h, wd))
        if self._conv_algo(c, f, kh * kw, "data") == "direct":
            self._launch("conv_direct.cl", "conv2d_backward_data_direct",
                         (_ceil(wd, 8), h, b * c), None,
                         (dy, w, dx, i32(b), i32(h), i32(wd), i32(oh), i32(ow)),
                         self._direct_opts(c, f, kh, kw, sh, sw, pt, pl))
            return dx
        dyt = self._scratch("conv_t", (b * oh * ow, f))
        self._launch("conv.cl", "conv2d_transpose021", (f, oh * ow, b), None,
                     (dy, dyt, i32(b), i32(f), i32(oh * ow)))
        dcols = self._scratch("conv_cols", (b * oh * ow, c * kh * kw))
        self.gemm(dyt, w.reshape(f, c * kh * kw), out=dcols)
        self._launch("conv.cl", "conv2d_col2im", (wd, h, b * c), None,
                     (dcols, dx, *map(i32, (b, c, h, wd, kh, kw, sh, sw, pt, pl, oh, ow))))
        return dx

    def conv2d_backward_filter(self, dy, x, w_shape, *, stride=(1, 1), padding=(0, 0, 0, 0),
                               out=None, beta: float = 0.0):
        """dw (F, C, KH, KW) from dy (B, F, OH, OW) and x; out = dw + beta * out."""
        op = "conv2d_backward_filter"
        oh, ow = C.conv_dims(x.shape, w_shape, stride, padding, op)
        C.check_shape("dy", dy, (x.shape[0], w_shape[0], oh, ow), op)
        C.check_same_dtype(op, dy=dy, x=x, out=out)
        dy = self._dev(dy, "dy", op)
        x = self._dev(x, "x", op)
        b, c, h, wd, f, kh, kw, sh, sw, pt, pl = self._geom(x.shape, w_shape, stride, padding)
        if out is None:
            beta = 0.0
        dw = self._out(out, (f, c, kh, kw), "out", op)
        if self._conv_algo(c, f, kh * kw, "filter") == "direct":
            self._launch("conv_direct.cl", "conv2d_backward_filter_direct", (kh, c, f), None,
                         (dy, x, dw, i32(b), i32(h), i32(wd), i32(oh), i32(ow), f32(beta)),
                         self._direct_opts(c, f, kh, kw, sh, sw, pt, pl))
            return dw
        cols = self._im2col(x, b, c, h, wd, kh, kw, sh, sw, pt, pl, oh, ow)
        dyf = self._scratch("conv_t", (f, b * oh * ow))
        self._launch("conv.cl", "conv2d_transpose102", (oh * ow, b, f), None,
                     (dy, dyf, i32(f), i32(b), i32(oh * ow)))
        self.gemm(dyf, cols, out=dw.reshape(f, c * kh * kw), beta=beta)
        return dw
