"""Fast numpy paths behind the numpy backend's convolution, pooling and SGD primitives.

im2col into a batched (B, C*KH*KW, OH*OW) matrix so one batched GEMM gives NCHW directly;
that matrix is kept (verified by the input's content) for the filter gradient; max pooling
with non-overlapping windows by elementwise comparisons instead of an argmax per window.
Every path computes exactly what the plain formulation does (same sums, same tie rules).
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Largest im2col block built at once (elements); bigger batches are processed in chunks.
CHUNK_ELEMENTS = 1 << 22
# Elements per chunk of the momentum-SGD update (128 KiB of float32: fits in L2).
SGD_CHUNK = 32768


def pad_nchw(x: np.ndarray, padding, value: float = 0.0) -> np.ndarray:
    """x (B, C, H, W) padded by (top, bottom, left, right) with ``value`` (x itself if none)."""
    t, bo, le, r = padding
    if not (t or bo or le or r):
        return x
    b, c, h, w = x.shape
    xp = np.full((b, c, h + t + bo, w + le + r), value, dtype=x.dtype)
    xp[:, :, t:t + h, le:le + w] = x
    return xp


def im2col(x: np.ndarray, kh: int, kw: int, stride, padding, oh: int, ow: int,
           out: np.ndarray | None = None) -> np.ndarray:
    """cols (B, C*KH*KW, OH*OW) of x (B, C, H, W): cols[b, (c, i, j), (p, q)] = xp[b, c, ..]."""
    xp = pad_nchw(x, padding)
    b, c = x.shape[:2]
    s0, s1, s2, s3 = xp.strides
    view = as_strided(xp, (b, c, kh, kw, oh, ow),
                      (s0, s1, s2, s3, s2 * stride[0], s3 * stride[1]), writeable=False)
    if out is None:
        out = np.empty((b, c * kh * kw, oh * ow), dtype=x.dtype)
    np.copyto(out.reshape(view.shape), view)
    return out


def col2im(dcols: np.ndarray, x_shape, kh: int, kw: int, stride, padding, oh: int,
           ow: int) -> np.ndarray:
    """Adjoint of ``im2col``: dx (B, C, H, W) summing dcols (B, C*KH*KW, OH*OW) back."""
    b, c, h, w = x_shape
    t, bo, le, r = padding
    sh, sw = stride
    dxp = np.zeros((b, c, h + t + bo, w + le + r), dtype=dcols.dtype)
    dc = dcols.reshape(b, c, kh, kw, oh, ow)
    for i in range(kh):
        rows = dxp[:, :, i:i + sh * (oh - 1) + 1:sh]
        for j in range(kw):
            rows[:, :, :, j:j + sw * (ow - 1) + 1:sw] += dc[:, :, i, j]
    if t or bo or le or r:
        return np.ascontiguousarray(dxp[:, :, t:t + h, le:le + w])
    return dxp


class ColsCache:
    """im2col matrices of recent conv forwards, reused by the filter gradient.

    An entry is found by its geometry and is used only if the input now passed holds
    exactly the values the forward saw (compared against a copy), so mutating an input in
    place between forward and backward is safe. Buffers released by the backward are
    recycled for the next forward of the same shape (no page faults on every step).
    """

    def __init__(self, max_entries: int = 8, max_bytes: int = 32 << 20) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: list[tuple[tuple, np.ndarray, np.ndarray]] = []
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def buffer(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialized array of ``shape``, recycled when one is free."""
        with self._lock:
            free = self._free.get((shape, np.dtype(dtype).str))
            if free:
                return free.pop()
        return np.empty(shape, dtype=dtype)

    def release(self, cols: np.ndarray) -> None:
        """Give ``cols`` back for reuse (at most two spare buffers per shape)."""
        with self._lock:
            free = self._free.setdefault((cols.shape, cols.dtype.str), [])
            if len(free) < 2:
                free.append(cols)

    def keep(self, key: tuple, x: np.ndarray, cols: np.ndarray) -> None:
        """Remember ``cols`` as the im2col of ``x`` under ``key``."""
        if 2 * cols.nbytes > self.max_bytes:
            return
        entry = (key, np.array(x, copy=True), cols)
        with self._lock:
            self._entries.append(entry)
            while (len(self._entries) > self.max_entries
                   or sum(e[2].nbytes for e in self._entries) > self.max_bytes):
                old = self._entries.pop(0)
                free = self._free.setdefault((old[2].shape, old[2].dtype.str), [])
                if len(free) < 2:
                    free.append(old[2])

    def take(self, key: tuple, x: np.ndarray) -> np.ndarray | None:
        """The kept im2col of ``x`` under ``key`` (removed from the cache), or None."""
        with self._lock:
            for n in range(len(self._entries) - 1, -1, -1):
                k, xc, cols = self._entries[n]
                if k == key and xc.shape == x.shape and np.array_equal(xc, x):
                    del self._entries[n]
                    return cols
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._free.clear()


def conv_key(x: np.ndarray, w_shape, stride, padding) -> tuple:
    return (x.shape, x.dtype.str, tuple(w_shape), tuple(stride), tuple(padding))


def conv_forward(x, w, bias, stride, padding, oh, ow, cache: ColsCache) -> np.ndarray:
    """conv + bias (no activation): x (B, C, H, W), w (F, C, KH, KW) -> (B, F, OH, OW)."""
    z, layout = conv_raw(x, w, bias, stride, padding, oh, ow, cache)
    if layout == "nchw":
        return z
    y = np.empty((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)
    np.copyto(y, z.transpose(0, 2, 1, 3))
    return y


def conv_raw(x, w, bias, stride, padding, oh, ow, cache: ColsCache):
    """conv + bias in the layout its GEMM produced: (z, "rows") with z (B, OH, F, OW) from the
    width-Toeplitz GEMM, or (z, "nchw") with z (B, F, OH, OW) from im2col. Either way the
    input's lowered matrix is kept in ``cache`` for the filter gradient."""
    f, c, kh, kw = w.shape
    b = x.shape[0]
    wp = x.shape[3] + padding[2] + padding[3]
    if forward_by_toeplitz(x.shape, w.shape, stride, wp, oh, ow):
        rows = im2row(x, kh, padding, oh)
        z = (rows @ toeplitz(w, ow, wp, "rows")).reshape(b, oh, f, ow)  # (B*OH, F*OW)
        cache.keep(conv_key(x, w.shape, stride, padding), x, rows)
        if bias is not None:
            z += bias.reshape(f, 1)
        return z, "rows"
    k, p = c * kh * kw, oh * ow
    w2 = w.reshape(f, k)
    y = np.empty((b, f, p), dtype=x.dtype)
    per = max(1, CHUNK_ELEMENTS // (k * p))
    if per >= b:
        cols = im2col(x, kh, kw, stride, padding, oh, ow,
                      out=cache.buffer((b, k, p), x.dtype))
        np.matmul(w2, cols, out=y)
        cache.keep(conv_key(x, w.shape, stride, padding), x, cols)
    else:
        buf = np.empty((per, k, p), dtype=x.dtype)
        for s in range(0, b, per):
            e = min(b, s + per)
            cols = im2col(x[s:e], kh, kw, stride, padding, oh, ow, out=buf[:e - s])
            np.matmul(w2, cols, out=y[s:e])
    if bias is not None:
        y += bias.reshape(f, 1)
    return y.reshape(b, f, oh, ow), "nchw"


def conv_backward_filter(dy, x, w_shape, stride, padding, cache: ColsCache,
                         dy_rows: np.ndarray | None = None) -> np.ndarray:
    """dw (F, C, KH, KW) = sum over batch and positions of dy * im2col(x).

    ``dy_rows``, when the caller has it, is dy already as (B*OH, F*OW) (see ``rows_of``)."""
    f, c, kh, kw = w_shape
    b, _, oh, ow = dy.shape
    k, p = c * kh * kw, oh * ow
    wp = x.shape[3] + padding[2] + padding[3]
    cached = cache.take(conv_key(x, w_shape, stride, padding), x)
    if forward_by_toeplitz(x.shape, w_shape, stride, wp, oh, ow):
        rows = cached if cached is not None else im2row(x, kh, padding, oh)
        g = rows.T @ (rows_of(dy) if dy_rows is None else dy_rows)  # (C*KH*Wp, F*OW)
        return toeplitz_band(g, w_shape, ow, wp, "rows").sum(axis=-1)
    dy3 = dy.reshape(b, f, p)
    if cached is not None:
        dw = np.matmul(dy3, cached.transpose(0, 2, 1)).sum(axis=0)
        cache.release(cached)
        return dw.reshape(w_shape)
    per = max(1, CHUNK_ELEMENTS // (k * p))
    dw = np.zeros((f, k), dtype=dy.dtype)
    buf = np.empty((min(per, b), k, p), dtype=x.dtype)
    for s in range(0, b, per):
        e = min(b, s + per)
        cols = im2col(x[s:e], kh, kw, stride, padding, oh, ow, out=buf[:e - s])
        dw += np.matmul(dy3[s:e], cols.transpose(0, 2, 1)).sum(axis=0)
    return dw.reshape(w_shape)


def toeplitz_band(t: np.ndarray, w_shape, ow: int, wp: int, layout: str) -> np.ndarray:
    """The (F, C, KH, KW, OW) view of the band of a width-Toeplitz matrix ``t`` (C-contiguous)
    where w[f, c, i, j] sits once per output column q, at column q + j:

    layout "rows" (forward, filter gradient): T[(c, i, col), (f, q)], shape (C*KH*Wp, F*OW);
    layout "cols" (data gradient): T[(f, q), (i, c, col)], shape (F*OW, KH*C*Wp).
    Band positions are distinct, so writing through the view is safe; summing it over the
    last axis is the adjoint (the filter gradient's gather).
    """
    f, c, kh, kw = w_shape
    if layout == "rows":  # flat ((c*KH + i)*Wp + q + j)*F*OW + f*OW + q
        st = (ow, kh * wp * f * ow, wp * f * ow, f * ow, f * ow + 1)
    else:  # flat (((f*OW + q)*KH + i)*C + c)*Wp + q + j
        st = (ow * kh * c * wp, wp, c * wp, 1, kh * c * wp + 1)
    return as_strided(t, (f, c, kh, kw, ow), tuple(v * t.itemsize for v in st))


_TOEPLITZ_BUF = threading.local()


def toeplitz(w: np.ndarray, ow: int, wp: int, layout: str) -> np.ndarray:
    """The width-Toeplitz matrix of w (see ``toeplitz_band``), zero off the band.

    Valid until the next call with the same geometry on this thread: a per-thread buffer
    whose off-band zeros are written once; each call rewrites only the band, through a
    strided view (no index array: 3-4x faster than a fancy-index scatter)."""
    f, c, kh, kw = w.shape
    bufs = getattr(_TOEPLITZ_BUF, "bufs", None)
    if bufs is None:
        bufs = _TOEPLITZ_BUF.bufs = {}
    key = (tuple(w.shape), w.dtype.str, ow, wp, layout)
    t = bufs.get(key)
    if t is None:
        if len(bufs) > 16:
            bufs.clear()
        t = bufs[key] = np.zeros(f * ow * kh * c * wp, dtype=w.dtype)
    np.copyto(toeplitz_band(t, w.shape, ow, wp, layout), w[..., None])
    if layout == "rows":
        return t.reshape(c * kh * wp, f * ow)
    return t.reshape(f * ow, kh * c * wp)


def im2row(x: np.ndarray, kh: int, padding, oh: int) -> np.ndarray:
    """X (B*OH, C*KH*Wp) with X[(b, p), (c, i, col)] = xp[b, c, p + i, col] (stride 1)."""
    xp = pad_nchw(x, padding)
    b, c, _, wp = xp.shape
    s0, s1, s2, s3 = xp.strides
    view = as_strided(xp, (b, oh, c, kh, wp), (s0, s2, s1, s2, s3), writeable=False)
    return view.reshape(b * oh, c * kh * wp)


def rows_of(dy: np.ndarray) -> np.ndarray:
    """dy (B, F, OH, OW) -> (B*OH, F*OW)."""
    b, f, oh, ow = dy.shape
    return np.ascontiguousarray(dy.transpose(0, 2, 1, 3)).reshape(b * oh, f * ow)


def use_row_toeplitz(w_shape, stride, wp: int) -> bool:
    """Data gradient: the row-Toeplitz GEMM does Wp/KW times the work of w^T @ dy, but
    col2im's KH*KW strided adds cost more on narrow maps."""
    return tuple(stride) == (1, 1) and w_shape[3] > 1 and wp <= 4 * w_shape[3]


def forward_by_toeplitz(x_shape, w_shape, stride, wp: int, oh: int, ow: int) -> bool:
    """Forward / filter gradient: width-Toeplitz GEMM or im2col, by a cost estimate.

    im2col copies B*C*KH*KW*OH*OW elements in runs of OW (short runs cost more per
    element) and multiplies them in small, memory-bound GEMMs (~36 GFLOP/s measured);
    the Toeplitz form copies only B*OH*C*KH*Wp elements but does Wp/KW times the flops
    in one large GEMM (~100 GFLOP/s). Costs in nanoseconds, fitted on LeNet shapes.
    """
    if tuple(stride) != (1, 1) or w_shape[3] < 2:
        return False
    b, c = x_shape[0], x_shape[1]
    f, _, kh, kw = w_shape
    rows = b * oh * c * kh * wp
    if rows > CHUNK_ELEMENTS:
        return False
    copies = b * c * kh * kw * oh * ow
    im2col = copies * (0.4 + 12.0 / ow) + 2.0 * copies * f / 36.0
    toeplitz = rows + 2.0 * rows * f * ow / 100.0 + 1.5 * b * f * oh * ow
    return toeplitz < im2col


def conv_backward_data(dy, w, x_shape, stride, padding,
                       dy_rows: np.ndarray | None = None) -> np.ndarray:
    """dx (B, C, H, W): one row-Toeplitz GEMM + KH shifted adds, or col2im(w^T @ dy).

    ``dy_rows``: dy as (B*OH, F*OW) when the caller has it in that layout."""
    f, c, kh, kw = w.shape
    b, _, oh, ow = dy.shape
    t, bo, le, r = padding
    h, wd = x_shape[2], x_shape[3]
    hp, wp = h + t + bo, wd + le + r
    if use_row_toeplitz(w.shape, stride, wp):
        contrib = (rows_of(dy) if dy_rows is None else dy_rows) @ toeplitz(w, ow, wp, "cols")
        contrib = contrib.reshape(b, oh, kh, c * wp)
        dxp = np.zeros((b, hp, c * wp), dtype=dy.dtype)
        for i in range(kh):
            dxp[:, i:i + oh] += contrib[:, :, i]
        dxp = dxp.reshape(b, hp, c, wp).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(dxp[:, :, t:t + h, le:le + wd])
    k, p = c * kh * kw, oh * ow
    wt = w.reshape(f, k).T
    dy3 = dy.reshape(b, f, p)
    per = max(1, CHUNK_ELEMENTS // (k * p))
    if per >= b:
        return col2im(np.matmul(wt, dy3), x_shape, kh, kw, stride, padding, oh, ow)
    dx = np.empty(x_shape, dtype=dy.dtype)
    for s in range(0, b, per):
        e = min(b, s + per)
        shape = (e - s,) + tuple(x_shape[1:])
        dx[s:e] = col2im(np.matmul(wt, dy3[s:e]), shape, kh, kw, stride, padding, oh, ow)
    return dx


class PoolIndex:
    """Flat-index grids of non-overlapping pooling windows, and which idx arrays are unique."""

    def __init__(self) -> None:
        self._base: dict[tuple, np.ndarray] = {}
        self._unique: dict[int, object] = {}
        self._lock = threading.Lock()

    def base(self, x_shape, pool, oh: int, ow: int) -> np.ndarray:
        """int32 (B, C, OH, OW): flat index in x of each window's top-left element."""
        key = (tuple(x_shape), tuple(pool), oh, ow)
        grid = self._base.get(key)
        if grid is None:
            b, c, h, w = x_shape
            plane = (np.arange(b * c, dtype=np.int64) * (h * w)).reshape(b, c, 1, 1)
            rows = (np.arange(oh) * pool[0] * w).reshape(oh, 1)
            grid = (plane + rows + np.arange(ow) * pool[1]).astype(np.int32)
            with self._lock:
                if len(self._base) > 16:
                    self._base.clear()
                self._base[key] = grid
        return grid

    def mark_unique(self, idx: np.ndarray) -> None:
        """Record that ``idx`` (an array we created) holds no repeated index."""
        import weakref

        with self._lock:
            dead = [k for k, r in self._unique.items() if r() is None]
            for k in dead:
                del self._unique[k]
            self._unique[id(idx)] = weakref.ref(idx)

    def is_unique(self, idx: np.ndarray) -> bool:
        ref = self._unique.get(id(idx))
        return ref is not None and ref() is idx


def maxpool_nonoverlap(x, pool, oh: int, ow: int, index: PoolIndex):
    """Max pooling with stride == pool and no padding: (y, idx) as the reference defines.

    The window elements are first copied into ph*pw contiguous planes (one strided copy);
    every comparison after that runs on contiguous memory. Ties keep the first maximum in
    window order, as argmax does.
    """
    b, c, h, w = x.shape
    ph, pw = pool
    xv = x[:, :, :oh * ph, :ow * pw].reshape(b, c, oh, ph, ow, pw)
    planes = np.empty((ph, pw, b, c, oh, ow), dtype=x.dtype)
    np.copyto(planes, xv.transpose(3, 5, 0, 1, 2, 4))
    y = planes[0, 0].copy()
    code = np.zeros(y.shape, dtype=np.int32)  # offset of the max within its window
    for di in range(ph):
        for dj in range(pw):
            if di == 0 and dj == 0:
                continue
            v = planes[di, dj]
            better = np.greater(v, y)
            np.maximum(y, v, out=y)
            step = np.subtract(di * w + dj, code, dtype=np.int32)
            step *= better
            code += step
    code += index.base(x.shape, pool, oh, ow)
    index.mark_unique(code)
    return y, code


def maxpool_backward(dy, idx, x_shape, index: PoolIndex) -> np.ndarray:
    """Route dy to the argmax positions; plain assignment when indices cannot repeat."""
    size = int(np.prod(x_shape))
    if index.is_unique(idx):
        dx = np.zeros(size, dtype=dy.dtype)
        dx[idx.ravel()] = dy.ravel()  # an indexed store: faster than np.put
        return dx.reshape(x_shape)
    dx = np.bincount(idx.ravel(), weights=dy.ravel(), minlength=size)
    return dx.astype(dy.dtype).reshape(x_shape)


class Scratch:
    """Per-thread scratch arrays by shape and dtype (contents undefined between uses)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, shape: tuple, dtype) -> np.ndarray:
        bufs = getattr(self._local, "bufs", None)
        if bufs is None:
            bufs = self._local.bufs = {}
        key = (tuple(shape), np.dtype(dtype).str)
        buf = bufs.get(key)
        if buf is None:
            if len(bufs) > 64:
                bufs.clear()
            buf = bufs[key] = np.empty(shape, dtype=dtype)
        return buf


def sgd_momentum_chunked(param, grad, velocity, lr: float, momentum: float,
                         buf: np.ndarray) -> None:
    """v = m*v + g; p -= lr * v on C-contiguous arrays, ``len(buf)`` elements at a time, so
    velocity, gradient and weights of a chunk stay in cache across the four passes (the
    same operations as the whole-array form, so bitwise the same result)."""
    p, g, v = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)
    n = buf.size
    lr_t = param.dtype.type(lr)
    for s in range(0, p.size, n):
        vc = v[s:s + n]
        vc *= momentum
        vc += g[s:s + n]
        step = buf[:vc.size]
        np.multiply(vc, lr_t, out=step)
        p[s:s + n] -= step


_BLAS: object = None  # numpy's BLAS level 1 once looked up; False when there is none


def _level1_blas():
    global _BLAS
    if _BLAS is None:
        from . import _numpy_blas

        _BLAS = _numpy_blas.load() or False
    return _BLAS


def sgd_momentum_blas(param, grad, velocity, lr: float, momentum: float) -> bool:
    """v = m*v + g; p -= lr * v as in-place BLAS level-1 passes (axpby and axpy, or scal,
    axpy and axpy) instead of four numpy passes and a temporary. False (nothing done)
    when numpy's BLAS has no level 1 we can call; the caller then uses the numpy path. v
    is bitwise the numpy result; p may differ in the last bit (axpy may fuse the multiply-add, as
    PyTorch's vectorised update does)."""
    blas = _level1_blas()
    if not blas or param.dtype not in (np.float32, np.float64):
        return False
    p, g, v = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)
    if not blas.axpby(1.0, g, momentum, v):
        blas.scal(momentum, v)
        blas.axpy(1.0, g, v)
    blas.axpy(-lr, v, p)
    return True
