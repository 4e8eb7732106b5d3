"""gemm on every backend against a float64 numpy reference: transposes, alpha/beta, the
fused bias + activation epilogue, odd shapes, views with offsets and strides, packed B."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.backends import get_backend
from mao_lab.backends.inventory import opencl_devices
from mao_lab.errors import ConfigError, DTypeError, ShapeError

KEYS = ["numpy"] + [info.key for info, _ in opencl_devices()]
OPENCL = [k for k in KEYS if k != "numpy"]
# float32 products of N(0,1) data accumulate ~1e-7 * sqrt(K) relative error per term
RTOL = 2e-5


def tol(k: int) -> float:
    return 2e-5 * max(1.0, np.sqrt(k)) * 4


@pytest.fixture(params=KEYS)
def be(request):
    return get_backend(request.param)


def _act64(y: np.ndarray, kind: str) -> np.ndarray:
    if kind == "relu":
        return np.maximum(y, 0)
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-y))
    if kind == "tanh":
        return np.tanh(y)
    if kind == "softmax":
        e = np.exp(y - y.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return y


def _operands(rng, m, n, k, ta, tb):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    return a, b, ref


SHAPES = [(1, 1, 1), (7, 33, 257), (33, 7, 5), (257, 129, 33), (64, 300, 784), (9, 1, 70)]


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_gemm_transposes(be, m, n, k, ta, tb):
    rng = np.random.default_rng(m * 1000 + n + k)
    a, b, ref = _operands(rng, m, n, k, ta, tb)
    got = be.to_host(be.gemm(be.asarray(a), be.asarray(b), trans_a=ta, trans_b=tb))
    assert got.shape == (m, n) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=tol(k))


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 0.0), (1.0, 1.0), (-2.0, 0.25)])
def test_gemm_alpha_beta(be, alpha, beta):
    rng = np.random.default_rng(3)
    m, n, k = 45, 70, 31
    a, b, ref = _operands(rng, m, n, k, False, True)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = be.asarray(c0)
    res = be.gemm(be.asarray(a), be.asarray(b), trans_b=True, alpha=alpha, beta=beta, out=out)
    assert res is out
    np.testing.assert_allclose(be.to_host(out), alpha * ref + beta * c0, rtol=RTOL,
                               atol=tol(k))


def test_gemm_beta_zero_ignores_nan_in_out(be):
    a, b, ref = _operands(np.random.default_rng(4), 20, 40, 12, False, False)
    out = be.asarray(np.full((20, 40), np.nan, np.float32))
    be.gemm(be.asarray(a), be.asarray(b), out=out)
    np.testing.assert_allclose(be.to_host(out), ref, rtol=RTOL, atol=tol(12))


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("m,n,k", [(33, 10, 17), (64, 300, 50), (5, 257, 3)])
def test_gemm_bias_activation(be, act, m, n, k):
    rng = np.random.default_rng(n)
    a, b, ref = _operands(rng, m, n, k, False, False)
    bias = rng.standard_normal(n).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = be.asarray(c0)
    be.gemm(be.asarray(a), be.asarray(b), bias=be.asarray(bias), activation=act, out=out,
            beta=0.5, alpha=0.75)
    want = _act64(0.75 * ref + 0.5 * c0 + bias, act)
    np.testing.assert_allclose(be.to_host(out), want, rtol=1e-4, atol=tol(k))


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("m,n,k,tb", [(64, 300, 50, False), (40, 64, 9, False),
                                      (33, 70, 17, True), (1, 33, 7, False), (16, 6, 25, True)])
def test_gemm_bias_activation_beta_zero(be, act, m, n, k, tb):
    """beta = 0 with a bias: the whole-block epilogue, shifted last blocks (B read in
    place, N not a multiple of the block), narrow outputs; out starts as NaN."""
    rng = np.random.default_rng(m + n)
    a, b, ref = _operands(rng, m, n, k, False, tb)
    bias = rng.standard_normal(n).astype(np.float32)
    out = be.asarray(np.full((m, n), np.nan, np.float32))
    be.gemm(be.asarray(a), be.asarray(b), trans_b=tb, bias=be.asarray(bias), activation=act,
            out=out, alpha=-1.5)
    want = _act64(-1.5 * ref + bias, act)
    np.testing.assert_allclose(be.to_host(out), want, rtol=1e-4, atol=tol(k))


def test_gemm_views_offsets_strides(be):
    """Operands that are views: row/column offsets, row strides, a transposed view."""
    rng = np.random.default_rng(5)
    big_a = rng.standard_normal((50, 60)).astype(np.float32)
    big_b = rng.standard_normal((40, 70)).astype(np.float32)
    big_c = rng.standard_normal((45, 80)).astype(np.float32)
    bias_h = rng.standard_normal(90).astype(np.float32)
    da, db, dc = be.asarray(big_a), be.asarray(big_b), be.asarray(big_c)
    dbias = be.asarray(bias_h)
    a_v, b_v = da[3:40, 5:38], db[2:35, 1:68]  # (37, 33) @ (33, 67)
    out_v = dc[4:41, 6:73]  # (37, 67), row stride 80, offset 4*80+6
    be.gemm(a_v, b_v, out=out_v, beta=1.0, bias=dbias[7:74], activation="tanh")
    ref = big_a[3:40, 5:38].astype(np.float64) @ big_b[2:35, 1:68]
    want_c = big_c.astype(np.float64).copy()
    want_c[4:41, 6:73] = np.tanh(ref + big_c[4:41, 6:73] + bias_h[7:74])
    np.testing.assert_allclose(be.to_host(dc), want_c, rtol=1e-4, atol=tol(33))
    # a transposed view and a row-strided view as inputs, trans flags on top
    big_d = rng.standard_normal((130, 70)).astype(np.float32)
    at = da[10:20].T  # (60, 10), strides (1, 60) elements, offset 600
    bs = be.asarray(big_d)[::2][:60, 3:33]  # (60, 30), row stride 140
    got = be.to_host(be.gemm(at, bs, trans_a=True))
    want = big_a[10:20].astype(np.float64) @ big_d[::2][:60, 3:33]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=tol(60))
    got = be.to_host(be.gemm(bs, at, trans_a=True))  # (30, 60) @ (60, 10)
    want = big_d[::2][:60, 3:33].T.astype(np.float64) @ big_a[10:20].T
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=tol(60))


def test_gemm_errors(be):
    a = be.asarray(np.ones((4, 5), np.float32))
    b = be.asarray(np.ones((6, 3), np.float32))
    with pytest.raises(ShapeError, match=r"inner dimensions differ.*\(4, 5\).*\(6, 3\)"):
        be.gemm(a, b)
    with pytest.raises(ShapeError, match="must be 2-D"):
        be.gemm(be.asarray(np.ones(5, np.float32)), b)
    b2 = be.asarray(np.ones((5, 3), np.float32))
    with pytest.raises(ShapeError, match=r"'out' must have shape \(4, 3\)"):
        be.gemm(a, b2, out=be.zeros((3, 4)))
    with pytest.raises(ShapeError, match=r"'bias' must have shape \(3,\)"):
        be.gemm(a, b2, bias=be.zeros((4,)))
    with pytest.raises(ConfigError, match="unknown activation 'gelu'"):
        be.gemm(a, b2, activation="gelu")
    with pytest.raises(ConfigError, match="beta != 0 needs an 'out'"):
        be.gemm(a, b2, beta=1.0)
    with pytest.raises(DTypeError):
        be.gemm(a, be.asarray(np.ones((5, 3), np.int32)))


@pytest.mark.parametrize("key", OPENCL)
def test_opencl_gemm_rejects_float64_and_host_arrays(key):
    be = get_backend(key)
    a64 = be.asarray(np.ones((4, 5)), dtype=np.float64)
    b = be.asarray(np.ones((5, 3), np.float32))
    with pytest.raises(DTypeError, match="float32 only.*float64"):
        be.gemm(a64, b)
    with pytest.raises(DTypeError, match="device array.*numpy.ndarray"):
        be.gemm(np.ones((4, 5), np.float32), b)


@pytest.mark.parametrize("key", OPENCL)
def test_opencl_packed_weights(key):
    """A PackedB is reused until repack(); it never follows its source silently."""
    be = get_backend(key)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((37, 29)).astype(np.float32)
    w = rng.standard_normal((41, 29)).astype(np.float32)  # used transposed: (29, 41)
    dx, dw = be.asarray(x), be.asarray(w)
    wp = be.pack_b(dw, trans_b=True)
    np.testing.assert_allclose(be.to_host(be.gemm(dx, wp)), x.astype(np.float64) @ w.T,
                               rtol=RTOL, atol=tol(29))
    be.fill(dw, 2.0)  # weights change in place ...
    stale = be.to_host(be.gemm(dx, wp))  # ... the packed copy still holds the old ones
    np.testing.assert_allclose(stale, x.astype(np.float64) @ w.T, rtol=RTOL, atol=tol(29))
    wp.repack()
    want = x.astype(np.float64) @ np.full((29, 41), 2.0)
    np.testing.assert_allclose(be.to_host(be.gemm(dx, wp)), want, rtol=RTOL, atol=tol(29))
    with pytest.raises(ShapeError, match="inner dimensions"):
        be.gemm(be.asarray(np.ones((3, 5), np.float32)), wp)
    with pytest.raises(ConfigError, match="PackedB already holds op"):
        be.gemm(dx, wp, trans_b=True)


@pytest.mark.parametrize("m,n,k,ta", [(6, 25, 5000, True), (33, 7, 3001, False),
                                      (16, 150, 2048, True)])
def test_gemm_long_k_split(be, m, n, k, ta):
    """Small outputs with long K (conv weight gradients): split-K + reduction epilogue."""
    rng = np.random.default_rng(k)
    a, b, ref = _operands(rng, m, n, k, ta, False)
    bias = rng.standard_normal(n).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = be.asarray(c0)
    be.gemm(be.asarray(a), be.asarray(b), trans_a=ta, out=out, alpha=0.01, beta=0.5,
            bias=be.asarray(bias), activation="sigmoid")
    want = _act64(0.01 * ref + 0.5 * c0 + bias, "sigmoid")
    np.testing.assert_allclose(be.to_host(out), want, rtol=1e-4, atol=1e-5 * np.sqrt(k))


def test_gemm_empty_k(be):
    """K = 0: the product is an empty sum, so out = act(beta * out + bias)."""
    a = be.asarray(np.zeros((5, 0), np.float32))
    b = be.asarray(np.zeros((0, 4), np.float32))
    c0 = np.arange(20, dtype=np.float32).reshape(5, 4) - 10
    out = be.asarray(c0)
    be.gemm(a, b, out=out, beta=2.0, bias=be.asarray(np.ones(4, np.float32)),
            activation="relu")
    np.testing.assert_allclose(be.to_host(out), np.maximum(2 * c0 + 1, 0))


@pytest.mark.parametrize("key", OPENCL)
def test_opencl_other_register_blocks(key):
    """Every configuration the tuner may pick computes the same products."""
    from dataclasses import replace

    from mao_lab.backends.opencl.tuner import GemmConfig

    be = get_backend(key)
    saved = be.gemm_config
    rng = np.random.default_rng(8)
    try:
        for cfg in (replace(saved, pack_a=True), GemmConfig(6, 16, 4, 4),
                    GemmConfig(4, 8, 1, 1, False)):
            be.gemm_config = cfg
            for ta, tb in ((False, False), (True, True)):
                a, b, ref = _operands(rng, 37, 70, 33, ta, tb)
                got = be.to_host(be.gemm(be.asarray(a), be.asarray(b), trans_a=ta,
                                         trans_b=tb, bias=be.zeros((70,))))
                np.testing.assert_allclose(got, ref, rtol=RTOL, atol=tol(33), err_msg=str(cfg))
    finally:
        be.gemm_config = saved


def test_gemm_out_aliases_an_input(be):
    """out may be (a view of) the same memory as a or b: inputs are read before writing."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((40, 40)).astype(np.float32)
    w = rng.standard_normal((40, 40)).astype(np.float32)
    dx, dw = be.asarray(x), be.asarray(w)
    be.gemm(dx, dw, out=dx)  # x <- x @ w
    np.testing.assert_allclose(be.to_host(dx), x.astype(np.float64) @ w, rtol=RTOL,
                               atol=tol(40))
    be.gemm(be.asarray(x), dw, out=dw, beta=1.0)  # w <- x @ w + w
    np.testing.assert_allclose(be.to_host(dw), x.astype(np.float64) @ w + w, rtol=RTOL,
                               atol=tol(40))
