"""Fused conv + bias + max pooling + activation for the numpy backend (Conv2D -> MaxPool2D).

The pooling runs on the convolution's output in whatever layout its GEMM produced (no
NCHW transpose of the full map), the activation runs on the 4x smaller pooled map, and the
backward writes the pooled gradient straight into the GEMM layout that the filter
gradient consumes. Exact for relu and linear: both commute with max (values and tie
rules: the first maximum in window order wins, as in ``maxpool2d_forward``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _numpy_fast as fast

FUSABLE_ACTIVATIONS = ("relu", "linear")


class PooledConvState(NamedTuple):
    """What ``conv_maxpool_backward`` needs from the forward."""

    z_shape: tuple  # physical shape of the conv output (B, OH, F, OW) or (B, F, OH, OW)
    layout: str  # "rows" or "nchw" (see fast.conv_raw)
    code: np.ndarray  # uint8, pooled shape in the conv output's layout: max position in window
    y: np.ndarray  # the pooled, activated output (B, F, OH2, OW2)
    pool: tuple
    activation: str


class SplitState(NamedTuple):
    """State of a forward split over batch slices (one PooledConvState per slice)."""

    parts: tuple  # ((start, stop, PooledConvState), ...)
    y: np.ndarray  # the whole pooled output


def _plane(z: np.ndarray, layout: str, di: int, dj: int, pool, oh2: int, ow2: int):
    """Strided view of window element (di, dj) of every pooling window, in z's own layout
    (so elementwise work runs in memory order): (B, OH2, F, OW2) or (B, F, OH2, OW2)."""
    ph, pw = pool
    rows, cols = slice(di, oh2 * ph, ph), slice(dj, ow2 * pw, pw)
    return z[:, rows, :, cols] if layout == "rows" else z[:, :, rows, cols]


def conv_maxpool_forward(x, w, bias, stride, padding, oh: int, ow: int, pool, activation: str,
                         cache: fast.ColsCache) -> tuple[np.ndarray, PooledConvState]:
    """act(maxpool(conv(x) + bias)) with non-overlapping ``pool`` windows (stride == pool)."""
    z, layout = fast.conv_raw(x, w, bias, stride, padding, oh, ow, cache)
    ph, pw = pool
    oh2, ow2 = oh // ph, ow // pw
    m = np.array(_plane(z, layout, 0, 0, pool, oh2, ow2), order="C")
    code = np.zeros(m.shape, dtype=np.uint8)
    for k in range(1, ph * pw):
        v = _plane(z, layout, k // pw, k % pw, pool, oh2, ow2)
        better = np.greater(v, m).view(np.uint8)
        np.maximum(m, v, out=m)
        # k exceeds every earlier position, so max(code, k * better) sets k where v won
        # (branch-free: a data-dependent putmask costs 4x as much here)
        better *= np.uint8(k)
        np.maximum(code, better, out=code)
    src = m.transpose(0, 2, 1, 3) if layout == "rows" else m
    y = np.empty((z.shape[0], w.shape[0], oh2, ow2), dtype=z.dtype)
    if activation == "relu":
        np.maximum(src, 0, out=y)
    else:
        np.copyto(y, src)
    return y, PooledConvState(z.shape, layout, code, y, (ph, pw), activation)


def conv_maxpool_backward(dy, st: PooledConvState, x, w, stride, padding,
                          cache: fast.ColsCache, need_dx: bool):
    """(dx or None, dw, db) of ``conv_maxpool_forward`` for the pooled gradient dy."""
    g = dy if st.activation == "linear" else dy * (st.y > 0)
    db = g.sum(axis=(0, 2, 3))
    ph, pw = st.pool
    b, f, oh2, ow2 = g.shape
    if st.layout == "rows":
        g = np.ascontiguousarray(g.transpose(0, 2, 1, 3))
    oh, ow = (st.z_shape[1], st.z_shape[3]) if st.layout == "rows" else st.z_shape[2:]
    dz = (np.empty if (oh, ow) == (oh2 * ph, ow2 * pw) else np.zeros)(st.z_shape, g.dtype)
    for k in range(ph * pw):
        # every window element is written once: the max gets g, the others 0
        np.multiply(g, st.code == k, out=_plane(dz, st.layout, k // pw, k % pw, st.pool,
                                                 oh2, ow2))
    if st.layout == "rows":
        rows, dz4 = dz.reshape(b * oh, f * ow), dz.transpose(0, 2, 1, 3)
    else:
        rows, dz4 = None, dz
    dw = fast.conv_backward_filter(dz4, x, tuple(w.shape), stride, padding, cache,
                                   dy_rows=rows)
    dx = None
    if need_dx:
        dx = fast.conv_backward_data(dz4, w, tuple(x.shape), stride, padding, dy_rows=rows)
    return dx, dw, db
