"""The numpy backend: the reference implementation (the specification) of every primitive.

Runs float32 for training and float64 for gradient checks. The OpenCL backend overrides
the same method names; the conformance suite compares both against this one in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import ConfigError, ShapeError
from . import _checks as C
from . import _numpy_fast as _fast
from . import _numpy_fused as _fused
from . import _numpy_threads as _threads
from .base import Backend, dropout_uniform


def _act(y: np.ndarray, kind: str) -> np.ndarray:
    """Apply activation ``kind`` to ``y`` in place and return it."""
    if kind == "relu":
        np.maximum(y, 0, out=y)
    elif kind == "sigmoid":
        # 1 / (1 + exp(-y)) without overflow warnings for large |y|
        np.negative(y, out=y)
        np.clip(y, -88.0, 88.0, out=y)
        np.exp(y, out=y)
        y += 1
        np.reciprocal(y, out=y)
    elif kind == "tanh":
        np.tanh(y, out=y)
    elif kind == "softmax":
        y -= y.max(axis=-1, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=-1, keepdims=True)
    return y


def _accumulate(out: np.ndarray, value, beta: float) -> np.ndarray:
    """out = value + beta * out, in place (the ``out=``/``beta=`` convention)."""
    if beta == 0:
        out[...] = value
    else:
        out *= beta
        out += value
    return out


def _sum_parts(arrays: list) -> np.ndarray:
    """The sum of per-part partial results (weight gradients of batch slices)."""
    total = arrays[0]
    for a in arrays[1:]:
        total += a
    return total


def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int):
    """Strided view (B, C, OH, OW, KH, KW) of padded input ``xp`` (no copy)."""
    b, c, _, _ = xp.shape
    s = xp.strides
    return as_strided(
        xp, (b, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]),
        writeable=False,
    )


def _pad(x: np.ndarray, padding, value: float = 0.0) -> np.ndarray:
    t, bo, le, r = padding
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, bo), (le, r)), constant_values=value)


class NumpyBackend(Backend):
    """Host CPU backend on numpy (SIMD + the BLAS numpy links).

    Example:
        >>> be = NumpyBackend()
        >>> be.gemm(be.asarray([[1.0, 2.0]]), be.asarray([[3.0], [4.0]])).tolist()
        [[11.0]]
    """

    kind = "numpy"

    def __init__(self) -> None:
        from .inventory import numpy_device_info

        self.info = numpy_device_info()
        self._cols = _fast.ColsCache()  # im2col of recent conv inputs, for the filter gradient
        self._pool = _fast.PoolIndex()
        self._scratch = _fast.Scratch()  # per-thread buffers (sgd_update)

    def compute_scope(self):
        """BLAS at one thread for the run; large ops split over the cores by this backend
        (see ``_numpy_threads``). Nests; safe to enter from several threads."""
        return _threads.POOL.scope()

    # ---- memory -------------------------------------------------------------------------
    def asarray(self, x, dtype=None) -> np.ndarray:
        """Host data -> device array (a contiguous copy; float32 unless ``dtype``)."""
        a = np.asarray(x)
        if dtype is None:
            dtype = a.dtype if a.dtype in (np.float64, np.int32, np.int64) else np.float32
        return np.array(a, dtype=dtype, order="C", copy=True)

    def to_host(self, a) -> np.ndarray:
        """Device array -> numpy array (waits for pending work)."""
        return np.asarray(a)

    def empty(self, shape, dtype=np.float32) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype=np.float32) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def copy(self, a) -> np.ndarray:
        return np.array(a, copy=True)

    def reshape(self, a, shape) -> np.ndarray:
        """A view with a new shape (same number of elements)."""
        try:
            return a.reshape(shape)
        except ValueError as exc:
            raise ShapeError(f"reshape: cannot view shape {a.shape} as {shape}") from exc

    def synchronize(self) -> None:
        """Wait until all queued work is done (numpy is synchronous)."""

    def fill(self, a, value: float) -> None:
        a.fill(value)

    # ---- BLAS ---------------------------------------------------------------------------
    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
             bias=None, activation="linear"):
        """out = act(alpha * op(a) @ op(b) + beta * out + bias).

        a: (M, K) or (K, M) if trans_a; b: (K, N) or (N, K) if trans_b; bias: (N,);
        out: (M, N). Returns out (allocated when None; then beta must be 0).
        """
        m, n, k = C.gemm_dims(a, b, trans_a, trans_b)
        C.check_activation(activation, "gemm")
        C.check_float("a", a, "gemm")
        C.check_same_dtype("gemm", a=a, b=b, out=out, bias=bias)
        if bias is not None:
            C.check_shape("bias", bias, (n,), "gemm")
        if out is None and beta != 0:
            raise ConfigError("gemm: beta != 0 needs an 'out' array to accumulate into")
        if out is not None:
            C.check_shape("out", out, (m, n), "gemm")
        # split over the cores along N (each part reads a slice of b) unless a softmax
        # needs whole rows or N is the small side, then along M; never when out overlaps
        # an input (parts would read what others write)
        along_n = n >= m and activation != "softmax"
        parts = _threads.POOL.parts(m * n * k, n if along_n else m)
        if parts > 1 and out is not None and (np.may_share_memory(out, a)
                                              or np.may_share_memory(out, b)):
            parts = 1
        if parts > 1:
            if out is None:
                out = np.empty((m, n), dtype=np.result_type(a, b))

            def part(i: int) -> None:
                lo, hi = _threads.bounds(i, parts, n if along_n else m, 16)
                if along_n:
                    bi = b[lo:hi] if trans_b else b[:, lo:hi]
                    self._gemm1(a, bi, trans_a, trans_b, alpha, beta, out[:, lo:hi],
                                None if bias is None else bias[lo:hi], activation)
                else:
                    ai = a[:, lo:hi] if trans_a else a[lo:hi]
                    self._gemm1(ai, b, trans_a, trans_b, alpha, beta, out[lo:hi], bias,
                                activation)

            _threads.POOL.run(part, parts)
            return out
        return self._gemm1(a, b, trans_a, trans_b, alpha, beta, out, bias, activation)

    @staticmethod
    def _gemm1(a, b, trans_a, trans_b, alpha, beta, out, bias, activation):
        """gemm on one thread's part (arguments checked by ``gemm``)."""
        opa = a.T if trans_a else a
        opb = b.T if trans_b else b
        if out is None:
            out = np.matmul(opa, opb)
            if alpha != 1:
                out *= alpha
        elif beta == 0 and alpha == 1:
            np.matmul(opa, opb, out=out)
        elif (beta != 0 and (blas := _fast._level1_blas())
              and not np.may_share_memory(out, a) and not np.may_share_memory(out, b)
              and blas.gemm(a, b, out, trans_a, trans_b, alpha, beta)):
            pass  # accumulated in one pass by BLAS (gradient accumulation, fused SGD)
        else:
            prod = np.matmul(opa, opb)
            if beta == 0:
                np.multiply(prod, alpha, out=out)
            else:
                out *= beta
                out += prod if alpha == 1 else alpha * prod
        if bias is not None:
            out += bias
        return _act(out, activation)

    # ---- activations --------------------------------------------------------------------
    def activation_forward(self, x, kind: str, out=None):
        """y = act(x), elementwise (softmax: over the last axis). x: any shape."""
        C.check_activation(kind, "activation_forward")
        if out is None:
            out = np.array(x, copy=True)
        else:
            np.copyto(out, x)
        return _act(out, kind)

    def activation_backward(self, dy, y, kind: str, out=None):
        """dx from dy and the forward *output* y (same shapes)."""
        C.check_activation(kind, "activation_backward")
        if dy.shape != y.shape:
            raise ShapeError(f"activation_backward: dy {dy.shape} and y {y.shape} differ")
        if kind == "linear":
            dx = np.array(dy, copy=True)
        elif kind == "relu":
            # the mask written straight as dy's dtype: a same-dtype multiply is the fast one
            dx = np.greater(y, 0, out=np.empty(dy.shape, dtype=dy.dtype))
            dx *= dy
        elif kind == "sigmoid":
            dx = dy * y * (1 - y)
        elif kind == "tanh":
            dx = dy * (1 - y * y)
        else:  # softmax over the last axis
            dx = y * (dy - (dy * y).sum(axis=-1, keepdims=True))
        if out is None:
            return dx.astype(dy.dtype, copy=False)
        np.copyto(out, dx)
        return out

    # ---- losses -------------------------------------------------------------------------
    def _targets(self, labels, shape, op, ids_ok: bool = False):
        """One-hot float64 targets of 1-D class ids (the ids themselves if ``ids_ok``)."""
        b, k = shape
        if labels.ndim == 1:
            if labels.shape[0] != b:
                raise ShapeError(f"{op}: {labels.shape[0]} labels for a batch of {b}")
            if labels.dtype.kind not in "iu":
                raise ShapeError(f"{op}: 1-D labels must be integer class ids")
            if ids_ok:
                return labels
            t = np.zeros(shape, dtype=np.float64)
            t[np.arange(b), labels] = 1
            return t
        C.check_shape("labels", labels, shape, op)
        return labels

    def softmax_cross_entropy_forward(self, logits, labels):
        """logits: (B, K); labels: (B,) int or (B, K) probabilities -> (probs, loss (B,))."""
        C.check_ndim("logits", logits, 2, "softmax_cross_entropy_forward")
        t = self._targets(labels, logits.shape, "softmax_cross_entropy_forward", ids_ok=True)
        rows = np.arange(logits.shape[0])
        # the row maxima through argmax: a float max-reduction along short rows costs 7x more
        z = logits - logits[rows, logits.argmax(axis=1)][:, None]
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        log_s = np.log(s)
        if t.ndim == 1:  # class ids: the one-hot sum is the picked log-probability, exactly
            loss = log_s[:, 0] - z[rows, t]
        else:
            z -= log_s
            loss = -(t * z).sum(axis=1)
        e /= s
        return e.astype(logits.dtype, copy=False), loss.astype(logits.dtype, copy=False)

    def softmax_cross_entropy_backward(self, probs, labels, scale: float = 1.0):
        """d loss / d logits = (probs - targets) * scale; probs: (B, K)."""
        if labels.ndim == 1 and labels.shape[0] == probs.shape[0] and labels.dtype.kind in "iu" \
                and probs.ndim == 2:
            # class ids: scale * probs, then subtract scale at each label (no one-hot matrix)
            d = np.multiply(probs, probs.dtype.type(scale))
            d[np.arange(len(labels)), labels] -= probs.dtype.type(scale)
            return d
        t = self._targets(labels, probs.shape, "softmax_cross_entropy_backward")
        return ((probs - t) * scale).astype(probs.dtype)

    def mse_forward(self, y, t):
        """Per-sample sum of squared errors: y, t: (B, ...) -> (B,)."""
        C.check_shape("target", t, y.shape, "mse_forward")
        d = (y - t).reshape(y.shape[0], -1)
        return np.einsum("ij,ij->i", d, d)

    def mse_backward(self, y, t, scale: float = 1.0):
        """d/dy of scale * sum((y - t)**2) = 2 * scale * (y - t)."""
        C.check_shape("target", t, y.shape, "mse_backward")
        return ((y - t) * (2 * scale)).astype(y.dtype)

    # ---- reductions and elementwise -------------------------------------------------------
    def reduce_sum(self, x, axis, out=None, beta: float = 0.0):
        """Sum over ``axis`` (int or tuple); out = sum + beta * out."""
        if (isinstance(axis, tuple) and axis == (0, 2, 3) and x.ndim == 4
                and x.dtype == np.float32
                and x.flags.c_contiguous):
            # per-channel sums (conv bias gradients): the batch first, over contiguous rows
            s = x.sum(axis=0).reshape(x.shape[1], -1).sum(axis=1)
        else:
            s = x.sum(axis=axis, dtype=np.float64 if x.dtype == np.float64 else None)
        if out is None:
            return np.asarray(s, dtype=x.dtype)
        C.check_shape("out", out, np.shape(s), "reduce_sum")
        return _accumulate(out, s, beta)

    def argmax(self, x, axis: int = -1):
        """Index of the largest value along ``axis`` (int32)."""
        return np.argmax(x, axis=axis).astype(np.int32)

    def add(self, a, b, out=None):
        """a + b (b may broadcast as a trailing suffix of a's shape, e.g. a bias row)."""
        return self._binary(np.add, "add", a, b, out)

    def mul(self, a, b, out=None):
        """a * b elementwise, with add's broadcasting."""
        return self._binary(np.multiply, "mul", a, b, out)

    @staticmethod
    def _binary(fn, op, a, b, out):
        try:
            return fn(a, b, out=out)
        except ValueError as exc:
            got = f"a {tuple(a.shape)}, b {tuple(b.shape)}"
            if out is not None:
                got += f", out {tuple(out.shape)}"
            raise ShapeError(f"{op}: shapes do not broadcast together ({got})") from exc

    def scale(self, a, alpha: float, out=None):
        return np.multiply(a, a.dtype.type(alpha), out=out)

    def axpy(self, alpha: float, x, y) -> None:
        """y += alpha * x, in place."""
        if x.shape != y.shape:
            raise ShapeError(f"axpy: x {x.shape} and y {y.shape} differ")
        blas = _fast._level1_blas()
        if (blas and x.dtype == y.dtype and y.dtype.kind == "f" and x.flags.c_contiguous
                and y.flags.c_contiguous and y.flags.writeable
                and (x is y or not np.may_share_memory(x, y))):
            blas.axpy(alpha, x.reshape(-1), y.reshape(-1))
            return
        y += y.dtype.type(alpha) * x

    # ---- convolution ----------------------------------------------------------------------
    def conv2d_forward(self, x, w, bias=None, *, stride=(1, 1), padding=(0, 0, 0, 0),
                       activation="linear"):
        """x: (B, C, H, W), w: (F, C, KH, KW), bias: (F,) -> act(conv + bias) (B, F, OH, OW)."""
        oh, ow = C.conv_dims(x.shape, w.shape, stride, padding, "conv2d_forward")
        C.check_activation(activation, "conv2d_forward")
        C.check_same_dtype("conv2d_forward", x=x, w=w, bias=bias)
        stride, padding = tuple(stride), tuple(padding)
        parts = self._conv_parts(x.shape[0], w.shape, oh, ow)
        if parts == 1:
            y = _fast.conv_forward(x, w, bias, stride, padding, oh, ow, self._cols)
            return _act(y, activation)
        y = np.empty((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)

        def part(i: int) -> None:
            lo, hi = _threads.bounds(i, parts, x.shape[0])
            y[lo:hi] = _fast.conv_forward(x[lo:hi], w, bias, stride, padding, oh, ow,
                                          self._cols)
            _act(y[lo:hi], activation)

        _threads.POOL.run(part, parts)
        return y

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=(1, 1), padding=(0, 0, 0, 0)):
        """dx (B, C, H, W) from dy (B, F, OH, OW) and w (F, C, KH, KW)."""
        oh, ow = C.conv_dims(x_shape, w.shape, stride, padding, "conv2d_backward_data")
        C.check_shape("dy", dy, (x_shape[0], w.shape[0], oh, ow), "conv2d_backward_data")
        stride, padding = tuple(stride), tuple(padding)
        parts = self._conv_parts(x_shape[0], w.shape, oh, ow)
        if parts == 1:
            return _fast.conv_backward_data(dy, w, tuple(x_shape), stride, padding)
        dx = np.empty(tuple(x_shape), dtype=dy.dtype)

        def part(i: int) -> None:
            lo, hi = _threads.bounds(i, parts, x_shape[0])
            dx[lo:hi] = _fast.conv_backward_data(dy[lo:hi], w, (hi - lo,) + tuple(x_shape[1:]),
                                                 stride, padding)

        _threads.POOL.run(part, parts)
        return dx

    def conv2d_backward_filter(self, dy, x, w_shape, *, stride=(1, 1), padding=(0, 0, 0, 0),
                               out=None, beta: float = 0.0):
        """dw (F, C, KH, KW) from dy (B, F, OH, OW) and x; out = dw + beta * out."""
        oh, ow = C.conv_dims(x.shape, w_shape, stride, padding, "conv2d_backward_filter")
        C.check_shape("dy", dy, (x.shape[0], w_shape[0], oh, ow), "conv2d_backward_filter")
        stride, padding = tuple(stride), tuple(padding)
        parts = self._conv_parts(x.shape[0], w_shape, oh, ow)
        if parts == 1:
            dw = _fast.conv_backward_filter(dy, x, tuple(w_shape), stride, padding, self._cols)
        else:
            dws = [None] * parts

            def part(i: int) -> None:
                lo, hi = _threads.bounds(i, parts, x.shape[0])
                dws[i] = _fast.conv_backward_filter(dy[lo:hi], x[lo:hi], tuple(w_shape),
                                                    stride, padding, self._cols)

            _threads.POOL.run(part, parts)
            dw = _sum_parts(dws)
        if out is None:
            return dw
        return _accumulate(out, dw, beta)

    def _conv_parts(self, b: int, w_shape, oh: int, ow: int) -> int:
        """Batch slices a conv op is split into over the cores (1: whole batch here)."""
        f, c, kh, kw = w_shape
        return _threads.POOL.parts(b * f * c * kh * kw * oh * ow, b, grain=4)

    def conv2d_maxpool_forward(self, x, w, bias=None, *, stride=(1, 1),
                               padding=(0, 0, 0, 0), activation="relu", pool=(2, 2)):
        """act(maxpool(conv(x) + bias)) in one pass: what conv2d_forward (linear), then
        maxpool2d_forward with stride == pool and no padding, then ``activation`` compute.

        Only for activations that commute with max ("relu", "linear"). Returns (y, state);
        ``state`` is opaque and feeds ``conv2d_maxpool_backward``. y: (B, F, OH2, OW2).
        """
        oh, ow = C.conv_dims(x.shape, w.shape, stride, padding, "conv2d_maxpool_forward")
        if activation not in _fused.FUSABLE_ACTIVATIONS:
            raise ConfigError(f"conv2d_maxpool_forward: activation must be one of "
                              f"{_fused.FUSABLE_ACTIVATIONS} (they commute with max); "
                              f"received {activation!r}")
        C.check_same_dtype("conv2d_maxpool_forward", x=x, w=w, bias=bias)
        pool = tuple(int(p) for p in pool)
        if len(pool) != 2 or min(pool) < 1 or pool[0] > oh or pool[1] > ow:
            raise ShapeError(f"conv2d_maxpool_forward: pool must be a pair of positive ints "
                             f"no larger than the conv output ({oh}, {ow}); received {pool}")
        stride, padding = tuple(stride), tuple(padding)
        parts = self._conv_parts(x.shape[0], w.shape, oh, ow)
        if parts == 1:
            return _fused.conv_maxpool_forward(x, w, bias, stride, padding, oh, ow, pool,
                                               activation, self._cols)
        done = [None] * parts

        def part(i: int) -> None:
            lo, hi = _threads.bounds(i, parts, x.shape[0])
            done[i] = (lo, hi, _fused.conv_maxpool_forward(x[lo:hi], w, bias, stride, padding,
                                                           oh, ow, pool, activation,
                                                           self._cols)[1])

        _threads.POOL.run(part, parts)
        y = np.concatenate([st.y for _, _, st in done])
        # each part's state sees its rows of the returned y (as the one-part state sees y)
        return y, _fused.SplitState(tuple((lo, hi, st._replace(y=y[lo:hi]))
                                          for lo, hi, st in done), y)

    def conv2d_maxpool_backward(self, dy, state, x, w, *, stride=(1, 1),
                                padding=(0, 0, 0, 0), dw_out, db_out=None, beta: float = 0.0,
                                need_dx: bool = True):
        """Backward of ``conv2d_maxpool_forward`` for dy (B, F, OH2, OW2): dw_out = dw +
        beta * dw_out, db_out likewise (when given); returns dx, or None if not need_dx."""
        if tuple(dy.shape) != tuple(state.y.shape):
            raise ShapeError(f"conv2d_maxpool_backward: dy {tuple(dy.shape)} does not match "
                             f"the forward output {tuple(state.y.shape)}")
        C.check_shape("dw_out", dw_out, tuple(w.shape), "conv2d_maxpool_backward")
        stride, padding = tuple(stride), tuple(padding)
        if isinstance(state, _fused.SplitState):
            dx = np.empty(x.shape, dtype=dy.dtype) if need_dx else None
            grads = [None] * len(state.parts)

            def part(i: int) -> None:
                lo, hi, st = state.parts[i]
                dxi, dwi, dbi = _fused.conv_maxpool_backward(dy[lo:hi], st, x[lo:hi], w,
                                                             stride, padding, self._cols,
                                                             need_dx)
                if need_dx:
                    dx[lo:hi] = dxi
                grads[i] = (dwi, dbi)

            _threads.POOL.run(part, len(state.parts))
            dw, db = _sum_parts([g[0] for g in grads]), _sum_parts([g[1] for g in grads])
        else:
            dx, dw, db = _fused.conv_maxpool_backward(dy, state, x, w, stride, padding,
                                                      self._cols, need_dx)
        for out, v in ((dw_out, dw), (db_out, db)):
            if out is not None:
                _accumulate(out, v, beta)
        return dx

    # ---- pooling --------------------------------------------------------------------------
    def maxpool2d_forward(self, x, pool, *, stride=None, padding=(0, 0, 0, 0)):
        """x: (B, C, H, W) -> (y (B, C, OH, OW), idx int32 flat indices into x)."""
        stride = tuple(stride or pool)
        oh, ow = C.window_dims(x.shape, pool, stride, padding, "maxpool2d_forward")
        b, c, h, w = x.shape
        if tuple(stride) == tuple(pool) and not any(padding):
            y, idx = _fast.maxpool_nonoverlap(x, tuple(pool), oh, ow, self._pool)
            return y, idx
        xp = _pad(x, padding, -np.inf)
        win = _windows(xp, *pool, *stride, oh, ow).reshape(b, c, oh, ow, -1)
        k = win.argmax(axis=-1)
        y = np.take_along_axis(win, k[..., None], axis=-1)[..., 0]
        # window position -> coordinates in the unpadded x
        ki, kj = np.divmod(k, pool[1])
        rows = np.arange(oh)[:, None] * stride[0] + ki - padding[0]
        cols = np.arange(ow)[None, :] * stride[1] + kj - padding[2]
        plane = (np.arange(b)[:, None] * c + np.arange(c)[None, :]) * (h * w)
        idx = plane[:, :, None, None] + rows * w + cols
        return np.ascontiguousarray(y), idx.astype(np.int32)

    def maxpool2d_backward(self, dy, idx, x_shape):
        """dx (B, C, H, W): each dy routed to the input element its max came from."""
        if dy.shape != idx.shape:
            raise ShapeError(f"maxpool2d_backward: dy {dy.shape} and idx {idx.shape} differ")
        return _fast.maxpool_backward(dy, idx, tuple(x_shape), self._pool)

    def _avg_counts(self, x_shape, pool, stride, padding, oh, ow):
        ones = np.ones((1, 1) + tuple(x_shape[2:]))
        win = _windows(_pad(ones, padding), *pool, *stride, oh, ow)
        return win.sum(axis=(-1, -2))[0, 0]  # (OH, OW): cells inside the input

    def avgpool2d_forward(self, x, pool, *, stride=None, padding=(0, 0, 0, 0)):
        """Mean over each window, padding excluded from the count: (B, C, OH, OW)."""
        stride = tuple(stride or pool)
        oh, ow = C.window_dims(x.shape, pool, stride, padding, "avgpool2d_forward")
        s = _windows(_pad(x, padding), *pool, *stride, oh, ow).sum(axis=(-1, -2))
        return (s / self._avg_counts(x.shape, pool, stride, padding, oh, ow)).astype(x.dtype)

    def avgpool2d_backward(self, dy, x_shape, pool, *, stride=None, padding=(0, 0, 0, 0)):
        """dx (B, C, H, W) of avgpool2d_forward."""
        stride = tuple(stride or pool)
        oh, ow = C.window_dims(x_shape, pool, stride, padding, "avgpool2d_backward")
        C.check_shape("dy", dy, tuple(x_shape[:2]) + (oh, ow), "avgpool2d_backward")
        g = dy / self._avg_counts(x_shape, pool, stride, padding, oh, ow)
        t, bo, le, r = padding
        h, w = x_shape[2:]
        dxp = np.zeros(tuple(x_shape[:2]) + (h + t + bo, w + le + r), dtype=dy.dtype)
        for i in range(pool[0]):
            for j in range(pool[1]):
                dxp[:, :, i:i + stride[0] * oh:stride[0], j:j + stride[1] * ow:stride[1]] += g
        return np.ascontiguousarray(dxp[:, :, t:t + h, le:le + w])

    # ---- dropout, batch norm ---------------------------------------------------------------
    def dropout_mask(self, shape, rate: float, seed: int, offset: int = 0, dtype=np.float32):
        """Inverted-dropout mask: 0 with probability ``rate``, else 1/(1-rate)."""
        if not 0 <= rate < 1:
            raise ConfigError(f"dropout_mask: rate must be in [0, 1); received {rate}")
        u = dropout_uniform(seed, offset, int(np.prod(shape)))
        return ((u >= rate) / (1.0 - rate)).astype(dtype).reshape(shape)

    def batchnorm_forward(self, x, gamma, beta, running_mean, running_var, *,
                          momentum: float = 0.99, eps: float = 1e-3, training: bool = True):
        """x: (B, C) or (B, C, H, W); per-channel stats. Returns (y, xhat, inv_std).

        Training updates running stats in place: r = momentum * r + (1 - momentum) * batch.
        Inference returns (y, None, None).
        """
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        if x.shape[1] != gamma.shape[0]:
            raise ShapeError(f"batchnorm_forward: x has {x.shape[1]} channels, gamma "
                             f"{gamma.shape[0]}")
        if not training:
            inv = 1 / np.sqrt(running_var + eps)
            y = (x - running_mean.reshape(bshape)) * (inv * gamma).reshape(bshape)
            return (y + beta.reshape(bshape)).astype(x.dtype), None, None
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        running_mean *= momentum
        running_mean += (1 - momentum) * mean
        running_var *= momentum
        running_var += (1 - momentum) * var
        inv = (1 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = (x - mean.reshape(bshape)) * inv.reshape(bshape)
        y = xhat * gamma.reshape(bshape) + beta.reshape(bshape)
        return y.astype(x.dtype), xhat.astype(x.dtype), inv

    def batchnorm_backward(self, dy, xhat, inv_std, gamma, dgamma, dbeta):
        """dx; accumulates dgamma += sum(dy * xhat), dbeta += sum(dy) per channel."""
        axes = (0,) if dy.ndim == 2 else (0, 2, 3)
        bshape = (1, -1) + (1,) * (dy.ndim - 2)
        m = dy.size // dy.shape[1]
        sdy = dy.sum(axis=axes)
        sdyx = (dy * xhat).sum(axis=axes)
        dgamma += sdyx
        dbeta += sdy
        k = (gamma * inv_std / m).reshape(bshape)
        dx = k * (m * dy - sdy.reshape(bshape) - xhat * sdyx.reshape(bshape))
        return dx.astype(dy.dtype)

    # ---- optimizers ------------------------------------------------------------------------
    def sgd_update(self, param, grad, velocity=None, *, lr: float, momentum: float = 0.0,
                   nesterov: bool = False, weight_decay: float = 0.0) -> None:
        """In place, PyTorch semantics: v = m*v + g; p -= lr * (g + m*v if nesterov else v)."""
        if (momentum and not nesterov and not weight_decay and velocity is not None
                and param.flags.c_contiguous and grad.flags.c_contiguous
                and velocity.flags.c_contiguous and grad.dtype == param.dtype == velocity.dtype
                and velocity.shape == param.shape == grad.shape):
            # BLAS level 1 at any size: three calls cost less than numpy's four ufuncs;
            # large weights in one contiguous slice per core
            parts = _threads.POOL.parts(param.size, param.size, 1 << 12, min_work=1 << 16)
            if parts > 1 and _fast._level1_blas():
                p, g, v = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)

                def part(i: int) -> None:
                    lo, hi = _threads.bounds(i, parts, p.size, 64)
                    _fast.sgd_momentum_blas(p[lo:hi], g[lo:hi], v[lo:hi], lr, momentum)

                _threads.POOL.run(part, parts)
                return
            if _fast.sgd_momentum_blas(param, grad, velocity, lr, momentum):
                return
            if param.size >= 2 * _fast.SGD_CHUNK:
                _fast.sgd_momentum_chunked(param, grad, velocity, lr, momentum,
                                           self._scratch.get((_fast.SGD_CHUNK,), param.dtype))
                return
        g = grad + weight_decay * param if weight_decay else grad
        if momentum:
            if velocity is None:
                raise ConfigError("sgd_update: momentum > 0 needs a velocity array")
            velocity *= momentum
            velocity += g
            step = g + momentum * velocity if nesterov else velocity
        else:
            step = g
        # lr * step into a reused buffer: no fresh (page-faulting) temporary every step
        buf = self._scratch.get(param.shape, param.dtype)
        np.multiply(step, param.dtype.type(lr), out=buf)
        param -= buf

    def adam_update(self, param, grad, m, v, *, lr: float, beta1: float = 0.9,
                    beta2: float = 0.999, eps: float = 1e-7, step: int = 1) -> None:
        """In place Adam with bias correction; ``step`` counts from 1."""
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        mhat = m / (1 - beta1**step)
        vhat = v / (1 - beta2**step)
        param -= (lr * mhat / (np.sqrt(vhat) + eps)).astype(param.dtype)
