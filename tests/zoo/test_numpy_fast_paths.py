"""The numpy backend's fast conv/pool paths (used by the zoo's training speed) against the
plain formulas in float64: im2col and width-Toeplitz convolution, the cached im2col of the
filter gradient (safe under in-place mutation), and comparison-based max pooling."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from mao_lab.backends import _numpy_fast as fast
from mao_lab.backends.numpy_backend import NumpyBackend

RNG = np.random.default_rng(7)


def _conv_ref(x, w, stride, pad):
    """Plain cross-correlation by einsum over explicit windows, float64."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    f, c, kh, kw = w.shape
    oh = (xp.shape[2] - kh) // stride[0] + 1
    ow = (xp.shape[3] - kw) // stride[1] + 1
    s = xp.strides
    win = as_strided(xp, (x.shape[0], c, oh, ow, kh, kw),
                     (s[0], s[1], s[2] * stride[0], s[3] * stride[1], s[2], s[3]))
    return np.einsum("bchwij,fcij->bfhw", win, w)


CASES = [  # (x shape, w shape, stride, padding): Toeplitz and im2col paths, odd sizes
    ((3, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2, 2, 2)),
    ((4, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0, 0, 0)),
    ((5, 4, 12, 12), (12, 4, 5, 5), (1, 1), (0, 0, 0, 0)),
    ((2, 3, 9, 7), (4, 3, 3, 3), (2, 1), (1, 0, 2, 1)),
    ((2, 2, 8, 8), (3, 2, 2, 3), (1, 2), (0, 1, 1, 0)),
    ((2, 3, 6, 5), (2, 3, 1, 1), (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("xs,ws,stride,pad", CASES)
def test_conv_forward_and_both_gradients_match_the_plain_formulas(xs, ws, stride, pad):
    be = NumpyBackend()
    x, w, b = RNG.standard_normal(xs), RNG.standard_normal(ws), RNG.standard_normal(ws[0])
    y = be.conv2d_forward(x, w, b, stride=stride, padding=pad)
    np.testing.assert_allclose(y, _conv_ref(x, w, stride, pad) + b[:, None, None],
                               rtol=1e-12, atol=1e-12)
    dy = RNG.standard_normal(y.shape)
    # adjoint identities: <dy, conv(e_x, w)> = <dx, e_x>, <dy, conv(x, e_w)> = <dw, e_w>
    ex, ew = RNG.standard_normal(xs), RNG.standard_normal(ws)
    dx = be.conv2d_backward_data(dy, w, xs, stride=stride, padding=pad)
    dw = be.conv2d_backward_filter(dy, x, ws, stride=stride, padding=pad)
    assert np.sum(dx * ex) == pytest.approx(np.sum(dy * _conv_ref(ex, w, stride, pad)),
                                            rel=1e-12, abs=1e-9)
    assert np.sum(dw * ew) == pytest.approx(np.sum(dy * _conv_ref(x, ew, stride, pad)),
                                            rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("xs,ws,stride,pad", CASES[:4])
def test_cached_im2col_is_not_used_after_the_input_changed(xs, ws, stride, pad):
    be = NumpyBackend()
    x, w = RNG.standard_normal(xs), RNG.standard_normal(ws)
    y = be.conv2d_forward(x, w, stride=stride, padding=pad)
    dy = RNG.standard_normal(y.shape)
    x[0, 0, 1, 1] += 0.5  # in place, after the forward
    dw = be.conv2d_backward_filter(dy, x, ws, stride=stride, padding=pad)
    fresh = NumpyBackend().conv2d_backward_filter(dy, x.copy(), ws, stride=stride,
                                                  padding=pad)
    np.testing.assert_array_equal(dw, fresh)
    # and a cache hit gives exactly the uncached result
    be.conv2d_forward(x, w, stride=stride, padding=pad)
    np.testing.assert_array_equal(be.conv2d_backward_filter(dy, x, ws, stride=stride,
                                                            padding=pad), fresh)


def test_large_batches_are_chunked_with_the_same_result(monkeypatch):
    be = NumpyBackend()
    x, w = RNG.standard_normal((7, 2, 9, 9)), RNG.standard_normal((3, 2, 3, 3))
    whole = be.conv2d_forward(x, w, padding=(1, 1, 1, 1))
    dy = RNG.standard_normal(whole.shape)
    dw = be.conv2d_backward_filter(dy, x, w.shape, padding=(1, 1, 1, 1))
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 2 * 18 * 81)  # two images per chunk
    be2 = NumpyBackend()
    np.testing.assert_allclose(be2.conv2d_forward(x, w, padding=(1, 1, 1, 1)), whole,
                               rtol=1e-13)
    np.testing.assert_allclose(be2.conv2d_backward_filter(dy, x, w.shape,
                                                          padding=(1, 1, 1, 1)), dw, rtol=1e-12)


@pytest.mark.parametrize("shape,pool", [((3, 4, 8, 8), (2, 2)), ((2, 3, 9, 7), (3, 2)),
                                        ((2, 2, 6, 6), (1, 3)), ((1, 1, 5, 5), (2, 2))])
def test_maxpool_fast_path_matches_argmax_windows_including_ties(shape, pool):
    be = NumpyBackend()
    x = RNG.standard_normal(shape)
    x[0, 0, 0, :2] = 5.0  # a tie inside the first window: the first element wins
    x[-1, -1, :2, :2] = -1.0  # a window of equal values
    y, idx = be.maxpool2d_forward(x, pool)
    oh, ow = shape[2] // pool[0], shape[3] // pool[1]
    s = x.strides
    win = as_strided(x, shape[:2] + (oh, ow) + pool,
                     (s[0], s[1], s[2] * pool[0], s[3] * pool[1], s[2], s[3]))
    win = win.reshape(shape[:2] + (oh, ow, -1))
    k = win.argmax(-1)
    ki, kj = np.divmod(k, pool[1])
    rows = np.arange(oh)[:, None] * pool[0] + ki
    cols = np.arange(ow)[None, :] * pool[1] + kj
    plane = (np.arange(shape[0])[:, None] * shape[1] + np.arange(shape[1])[None, :])
    ref_idx = plane[:, :, None, None] * (shape[2] * shape[3]) + rows * shape[3] + cols
    np.testing.assert_array_equal(y, win.max(-1))
    np.testing.assert_array_equal(idx, ref_idx)
    assert idx.dtype == np.int32
    dy = RNG.standard_normal(y.shape)
    ref_dx = np.bincount(ref_idx.ravel(), weights=dy.ravel(), minlength=x.size)
    np.testing.assert_array_equal(be.maxpool2d_backward(dy, idx, shape),
                                  ref_dx.reshape(shape))
    # an index array we did not create goes through the accumulating path
    np.testing.assert_array_equal(be.maxpool2d_backward(dy, idx.copy(), shape),
                                  ref_dx.reshape(shape))
