"""ConvPoolMixin: Conv2D + non-overlapping MaxPool2D + relu/linear as one OpenCL pass.

The direct stride-1 case runs kernels/conv_pool.cl (the conv map stays in registers; one
scatter kernel for the backward). Every other geometry composes the backend's own
conv2d_forward and maxpool2d_forward, so the fused API works for any input.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...errors import ConfigError, ShapeError
from .. import _checks as C
from .ops_conv import _ACT, _DIRECT_MAX_TAPS, _fb
from .ops_launch import i32

FUSABLE_ACTIVATIONS = ("relu", "linear")


class CLPooledConvState(NamedTuple):
    """What ``conv2d_maxpool_backward`` needs from the forward."""

    z_shape: tuple  # the conv output (B, F, OH, OW)
    y: Any  # pooled, activated output (B, F, OH2, OW2)
    index: Any  # fused: uint8 window positions; composed: maxpool2d_forward's flat indices
    z: Any  # composed only: the conv output (for the activation backward)
    pool: tuple
    activation: str
    fused: bool
    xp: Any = None  # fused: (x, x zero-padded, Hp, Wp), for the filter gradient


class ConvPoolMixin:
    """See NumpyBackend.conv2d_maxpool_forward for the specification."""

    def _convpool_direct(self, c, f, kh, kw, stride, pool) -> bool:
        return (self.conv_algorithm != "im2col" and tuple(stride) == (1, 1)
                and 8 % pool[1] == 0 and pool[0] <= 8 and c * kh * kw <= _DIRECT_MAX_TAPS)

    def conv2d_maxpool_forward(self, x, w, bias=None, *, stride=(1, 1),
                               padding=(0, 0, 0, 0), activation="relu", pool=(2, 2)):
        """act(maxpool(conv(x) + bias)) -> (y (B, F, OH2, OW2), state)."""
        op = "conv2d_maxpool_forward"
        oh, ow = C.conv_dims(x.shape, w.shape, stride, padding, op)
        if activation not in FUSABLE_ACTIVATIONS:
            raise ConfigError(f"{op}: activation must be one of {FUSABLE_ACTIVATIONS} (they "
                              f"commute with max); received {activation!r}")
        C.check_same_dtype(op, x=x, w=w, bias=bias)
        pool = tuple(int(p) for p in pool)
        if len(pool) != 2 or min(pool) < 1 or pool[0] > oh or pool[1] > ow:
            raise ShapeError(f"{op}: pool must be a pair of positive ints no larger than the "
                             f"conv output ({oh}, {ow}); received {pool}")
        x, w = self._dev(x, "x", op), self._dev(w, "w", op)
        b, c, h, wd, f, kh, kw, st, pad = self._prep(x.shape, w.shape, stride, padding)
        if bias is not None:
            C.check_shape("bias", bias, (f,), op)
            bias = self._dev(bias, "bias", op)
        oh2, ow2 = oh // pool[0], ow // pool[1]
        if not self._convpool_direct(c, f, kh, kw, st, pool):
            z = self.conv2d_forward(x, w, bias, stride=st, padding=pad, activation=activation)
            y, idx = self.maxpool2d_forward(z, pool)
            return y, CLPooledConvState(tuple(z.shape), y, idx, z, pool, activation, False)
        x_in = x
        xp, hp, wp = self._pad_x(x, b, c, h, wd, pad, oh, ow, 1, kh, kw, keep=True)
        y = self.empty((b, f, oh2, ow2))
        code = self.empty((b, f, oh2, ow2), dtype=np.uint8)
        fb = _fb(f)
        opts = (f"-DC={c}", f"-DF={f}", f"-DKH={kh}", f"-DKW={kw}", f"-DFB={fb}",
                f"-DPH={pool[0]}", f"-DPW={pool[1]}", f"-DACT={_ACT[activation]}",
                f"-DHAS_BIAS={int(bias is not None)}")
        self._launch("conv_pool.cl", "conv2d_maxpool_forward", (oh2, b * (f // fb)), (1, 1),
                     (xp, w, w if bias is None else bias, y, code,
                      *map(i32, (hp, wp, oh2, ow2))), opts)
        return y, CLPooledConvState((b, f, oh, ow), y, code, None, pool, activation, True,
                                    (x_in, xp, hp, wp))

    def conv2d_maxpool_backward(self, dy, state, x, w, *, stride=(1, 1),
                                padding=(0, 0, 0, 0), dw_out, db_out=None, beta: float = 0.0,
                                need_dx: bool = True):
        """Backward of ``conv2d_maxpool_forward``: dw_out = dw + beta * dw_out (db_out too);
        returns dx (B, C, H, W), or None if not need_dx."""
        op = "conv2d_maxpool_backward"
        if tuple(dy.shape) != tuple(state.y.shape):
            raise ShapeError(f"{op}: dy {tuple(dy.shape)} does not match the forward output "
                             f"{tuple(state.y.shape)}")
        C.check_shape("dw_out", dw_out, tuple(w.shape), op)
        dy = self._dev(dy, "dy", op)
        if state.fused:
            return self._convpool_backward_fused(dy, state, x, w, padding, dw_out, db_out,
                                                 beta, need_dx)
        dz = self.maxpool2d_backward(dy, state.index, state.z_shape)
        if state.activation != "linear":
            dz = self.activation_backward(dz, state.z, state.activation)
        self.conv2d_backward_filter(dz, x, tuple(w.shape), stride=stride, padding=padding,
                                    out=dw_out, beta=beta)
        if db_out is not None:
            self.reduce_sum(dz, (0, 2, 3), out=db_out, beta=beta)
        if not need_dx:
            return None
        return self.conv2d_backward_data(dz, w, tuple(x.shape), stride=stride,
                                         padding=padding)

    def _convpool_backward_fused(self, dy, state, x, w, padding, dw_out, db_out, beta,
                                 need_dx):
        """One scatter writes dz straight into the zero-padded planes the direct data
        gradient reads (or, without dx, rows padded to 8 columns for the filter gradient),
        so neither gradient needs a padding pass; x comes padded from the forward."""
        op = "conv2d_maxpool_backward"
        b, f, oh, ow = state.z_shape
        oh2, ow2 = state.y.shape[2:]
        ph, pw = state.pool
        x, w = self._dev(x, "x", op), self._dev(w, "w", op)
        dw_out = self._out(dw_out, tuple(w.shape), "dw_out", op)
        c, h, wd = (int(s) for s in x.shape[1:])
        kh, kw = (int(s) for s in w.shape[2:])
        pad = tuple(int(p) for p in padding)
        owp = -(-ow // 8) * 8
        data_algo = self._conv_algo(c, f, kh, kw, (1, 1), pad, "data") if need_dx else None
        if data_algo == "direct":
            hz, wz, zt, zl = self._data_layout(h, wd, oh, ow, kh, kw, pad)
            wz = max(wz, zl + owp)  # the filter gradient reads owp columns from zl
        elif data_algo is None:
            hz, wz, zt, zl = oh, owp, 0, 0
        else:  # the im2col data gradient reads dense (B, F, OH, OW)
            hz, wz, zt, zl = oh, ow, 0, 0
        dzp = self._scratch("convpool_dz", (b * f, hz, wz))
        gsum = self._scratch("convpool_gsum", (b, f))
        # one-item work-groups: a plane is a loop nest, not a lane of PoCL's vectorizer
        self._launch("conv_pool.cl", "conv2d_maxpool_scatter", (b * f,), (1,),
                     (dy, state.y, state.index, dzp, gsum,
                      *map(i32, (b * f, oh2, ow2, hz, wz, zt, zl))),
                     (f"-DPH={ph}", f"-DPW={pw}", f"-DACT={_ACT[state.activation]}"))
        if db_out is not None:  # from the planes' sums: OH*OW x less to read
            self.reduce_sum(gsum, (0,), out=db_out, beta=beta)
        if data_algo not in (None, "direct"):
            dz = self._array((b, f, oh, ow), data=dzp.base_data)
            self.conv2d_backward_filter(dz, x, tuple(w.shape), padding=pad, out=dw_out,
                                        beta=beta)
            return self.conv2d_backward_data(dz, w, tuple(x.shape), padding=pad)
        x_fwd, xp, hp, wp = state.xp
        if not (x is x_fwd or (x.base_data is x_fwd.base_data and x.offset == x_fwd.offset
                               and x.shape == x_fwd.shape)):
            xp, hp, wp = self._pad_x(x, b, c, h, wd, pad, oh, ow, 1, kh, kw)
        self._backward_filter_direct(dzp, (zt * wz + zl, wz, hz * wz), xp, hp, wp, dw_out,
                                     (b, oh, ow), 1, beta)
        if data_algo is None:
            return None
        dx = self.empty((b, c, h, wd))
        self._backward_data_direct(dzp, hz, wz, (zt, zt + oh), w, dx)
        return dx
