"""Fused conv + bias + max-pool + activation (conv2d_maxpool_forward/backward) on every
backend against the numpy reference's composed primitives (conv2d_forward, activation,
maxpool2d_forward and their backwards)."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab import Sequential, zoo
from mao_lab.backends.numpy_backend import NumpyBackend
from mao_lab.errors import ConfigError, ShapeError
from mao_lab.layers import Conv2D, Dense, Flatten, MaxPool2D
from mao_lab.layers.conv import same_padding

# (batch, channels, H, W, filters, kernel, conv stride, padding, pool)
CASES = [
    (5, 1, 28, 28, 6, 5, 1, "same", (2, 2)),  # LeNet-5 C1+S2: im2col layout
    (7, 6, 14, 14, 16, 5, 1, "valid", (2, 2)),  # LeNet-5 C3+S4: width-Toeplitz layout
    (3, 2, 11, 9, 4, 3, 1, "valid", (2, 2)),  # 9x7 output: a ragged last row and column
    (2, 3, 13, 13, 5, 3, 2, "same", (3, 3)),  # strided conv, 3x3 windows
    (4, 1, 16, 12, 3, 5, 1, "valid", (2, 3)),  # non-square windows
    (1, 4, 10, 10, 33, 3, 1, "same", (1, 1)),  # 1x1 windows: plain conv + activation
    (2, 1, 7, 6, 260, 3, 1, "valid", (2, 2)),  # F*KH*KW > 2304: im2col data gradient
    (3, 3, 9, 12, 5, 5, 1, "same", (3, 2)),  # padded data-gradient planes, ragged rows
]


def _pad(h, w, k, s, padding):
    if padding == "valid":
        return (0, 0, 0, 0)
    return same_padding(h, k, s) + same_padding(w, k, s)


def _composed(be, x, w, b, stride, pad, act, pool, dy, need_dx=True):
    z = be.conv2d_forward(x, w, b, stride=stride, padding=pad, activation=act)
    y, idx = be.maxpool2d_forward(z, pool)
    g = be.maxpool2d_backward(dy, idx, z.shape)
    g = be.activation_backward(g, z, act)
    dw = be.conv2d_backward_filter(g, x, w.shape, stride=stride, padding=pad)
    db = be.reduce_sum(g, (0, 2, 3))
    dx = be.conv2d_backward_data(g, w, x.shape, stride=stride, padding=pad) if need_dx else None
    return y, dx, dw, db


REF = NumpyBackend()


def _backward(be, dy, st, x, w, **kw):
    """Host (dx, dw, db) through the out-array interface, accumulation (beta) included."""
    dt = np.asarray(be.to_host(w)).dtype.type
    dw = be.asarray(np.full(tuple(w.shape), 0.5, dt))
    db = be.asarray(np.full(tuple(w.shape[:1]), 0.25, dt))
    dx = be.conv2d_maxpool_backward(dy, st, x, w, dw_out=dw, db_out=db, beta=1.0, **kw)
    dx = None if dx is None else np.asarray(be.to_host(dx))
    return dx, np.asarray(be.to_host(dw)) - dt(0.5), np.asarray(be.to_host(db)) - dt(0.25)


@pytest.mark.parametrize("act", ["relu", "linear"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-{c[8]}")
def test_fused_matches_composed_primitives(backend, case, act):
    bsz, c, h, wd, f, k, s, padding, pool = case
    rng = np.random.default_rng(sum(case[:6]))
    be = backend
    x = rng.standard_normal((bsz, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((f, c, k, k)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    pad = _pad(h, wd, k, s, padding)
    xd, wdv = be.asarray(x), be.asarray(w)
    y, st = be.conv2d_maxpool_forward(xd, wdv, be.asarray(b), stride=(s, s), padding=pad,
                                      activation=act, pool=pool)
    y = np.asarray(be.to_host(y))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    ry, rdx, rdw, rdb = _composed(REF, x, w, b, (s, s), pad, act, pool, dy)
    if be.kind == "numpy":  # values and layout: exactly the composed forward
        np.testing.assert_array_equal(y, ry)
    else:  # another device sums the conv in its own order
        np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    dx, dw, db = _backward(be, be.asarray(dy), st, xd, wdv, stride=(s, s), padding=pad)
    scale = 1 + np.abs(rdw).max()
    np.testing.assert_allclose(dw, rdw, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(dx, rdx, rtol=1e-5, atol=1e-5 * scale)


def test_ties_route_to_the_first_maximum(backend):
    _check_ties(backend, np.float32)


def test_ties_route_to_the_first_maximum_in_float64_on_the_reference():
    _check_ties(REF, np.float64)


def _check_ties(be, dtype):
    """Integer-valued data (exact in float32 too) makes ties in every window; the first
    maximum must win, as in maxpool2d_forward, and the backward routes to it."""
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (4, 2, 12, 12)).astype(dtype)
    w = rng.integers(-1, 2, (3, 2, 3, 3)).astype(dtype)
    b = np.array([0.0, 1.0, -1.0], dtype)
    xd, wd = be.asarray(x, dtype=dtype), be.asarray(w, dtype=dtype)
    y, st = be.conv2d_maxpool_forward(xd, wd, be.asarray(b, dtype=dtype),
                                      padding=(1, 1, 1, 1))
    dy = rng.integers(1, 9, tuple(y.shape)).astype(dtype)  # exact sums in any order
    ry, rdx, rdw, rdb = _composed(REF, x, w, b, (1, 1), (1, 1, 1, 1), "relu", (2, 2), dy)
    dx, dw, db = _backward(be, be.asarray(dy, dtype=dtype), st, xd, wd, padding=(1, 1, 1, 1))
    np.testing.assert_array_equal(np.asarray(be.to_host(y)), ry)
    np.testing.assert_array_equal(dw, rdw)
    np.testing.assert_array_equal(db, rdb)
    np.testing.assert_array_equal(dx, rdx)


def test_need_dx_false_skips_the_data_gradient(backend):
    be = backend
    x = be.asarray(np.ones((2, 1, 8, 8), np.float32))
    w = be.asarray(np.ones((2, 1, 3, 3), np.float32))
    y, st = be.conv2d_maxpool_forward(x, w, None)
    dx, dw, db = _backward(be, be.asarray(np.ones(tuple(y.shape), np.float32)), st, x, w,
                           need_dx=False)
    assert dx is None and dw.shape == (2, 1, 3, 3) and db.shape == (2,)
    np.testing.assert_array_equal(dw, np.full((2, 1, 3, 3), 2 * 9, np.float32))


def test_bad_input_is_refused_by_name(backend):
    be = backend
    x = be.asarray(np.ones((2, 1, 8, 8), np.float32))
    w = be.asarray(np.ones((2, 1, 3, 3), np.float32))
    with pytest.raises(ConfigError, match="activation must be one of"):
        be.conv2d_maxpool_forward(x, w, activation="sigmoid")
    with pytest.raises(ShapeError, match="pool must be"):
        be.conv2d_maxpool_forward(x, w, pool=(7, 7))
    y, st = be.conv2d_maxpool_forward(x, w)
    with pytest.raises(ShapeError, match="does not match the forward output"):
        _backward(be, be.asarray(np.ones((2, 2, 2, 2), np.float32)), st, x, w)


def _grads(model, x, y):
    loss, _ = model._loss_and_grads(x, y)
    return loss, [np.array(la.be.to_host(la.grads[n])) for _, la, n in model._keys]


def test_model_step_fuses_conv_pool_pairs_and_matches_the_unfused_step(backend, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 9)
    fused = zoo.lenet5(seed=0).to(backend.key)
    loss_f, g_f = _grads(fused, x, y)
    assert fused._pooled == {1, 3}  # S2 and S4 ran inside C1 and C3
    pred_f = fused.predict(x)
    monkeypatch.setattr(Conv2D, "fuses_with", lambda self, nxt: False)
    plain = zoo.lenet5(seed=0).to(backend.key)
    loss_p, g_p = _grads(plain, x, y)
    assert plain._pooled == set()
    np.testing.assert_allclose(loss_f, loss_p, rtol=1e-6)
    np.testing.assert_allclose(pred_f, plain.predict(x), rtol=1e-5, atol=1e-7)
    for a, b in zip(g_f, g_p):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_pairs_that_cannot_fuse_run_unfused():
    m = Sequential([Conv2D(3, 3, activation="tanh"), MaxPool2D(2),  # tanh: not fused
                    Conv2D(3, 3, activation="relu"), MaxPool2D(2, strides=1),  # overlapping
                    Flatten(), Dense(2, activation="softmax")], input_shape=(1, 12, 12))
    m.compile("sgd", "sparse_categorical_crossentropy")
    m._loss_and_grads(np.ones((2, 1, 12, 12), np.float32), np.array([0, 1]))
    assert m._pooled == set()
