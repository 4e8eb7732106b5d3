"""OpenCL gemm launch plans: one plan per call signature reused with new buffers, offsets,
aliasing and alpha/beta; the thin long-K path (few rows, B read in place in L2 slabs)."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.errors import ConfigError, DTypeError


def _ref(a, b, ta, tb):
    return (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)


@pytest.mark.parametrize("m,n,k,ta", [(1, 7, 1025, False), (5, 33, 1031, False),
                                      (16, 257, 2049, False), (9, 40, 3001, True),
                                      (13, 17, 4099, False), (3, 1, 1024, True)])
def test_thin_long_k_products(opencl_backend, m, n, k, ta):
    """M <= 16 with long K: 4- or 8-row blocks, B in place, K walked in slabs + reduction."""
    be = opencl_backend
    rng = np.random.default_rng(m * 7 + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = be.asarray(c0)
    be.gemm(be.asarray(a), be.asarray(b), trans_a=ta, out=out, alpha=0.5, beta=-1.0,
            bias=be.asarray(bias), activation="tanh")
    want = np.tanh(0.5 * _ref(a, b, ta, False) - c0 + bias)
    np.testing.assert_allclose(be.to_host(out), want, rtol=1e-4, atol=2e-5 * np.sqrt(k))
    got = be.to_host(be.gemm(be.asarray(a), be.asarray(b), trans_a=ta))  # plain, no epilogue
    np.testing.assert_allclose(got, _ref(a, b, ta, False), rtol=1e-4, atol=2e-5 * np.sqrt(k))


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False)])
def test_plan_reused_with_other_offsets_and_scalars(opencl_backend, ta, tb):
    """The same shapes and strides at other offsets and other alpha/beta: one plan, the
    right values every time."""
    be = opencl_backend
    rng = np.random.default_rng(11)
    m, n, k = 33, 7, 257
    big_a = rng.standard_normal((3 * (k if ta else m), m if ta else k)).astype(np.float32)
    big_b = rng.standard_normal((3 * (n if tb else k), k if tb else n)).astype(np.float32)
    da, db = be.asarray(big_a), be.asarray(big_b)
    ra, rb = (k if ta else m), (n if tb else k)
    out = be.asarray(np.zeros((2 * m, n), np.float32))
    for i, (alpha, beta) in enumerate([(1.0, 0.0), (0.5, 0.0), (2.0, 1.0)]):
        a, b = big_a[i * ra:(i + 1) * ra], big_b[i * rb:(i + 1) * rb]
        c0 = be.to_host(out)[m:]
        be.gemm(da[i * ra:(i + 1) * ra], db[i * rb:(i + 1) * rb], trans_a=ta, trans_b=tb,
                alpha=alpha, beta=beta, out=out[m:])
        want = alpha * _ref(a, b, ta, tb) + beta * c0
        np.testing.assert_allclose(be.to_host(out)[m:], want, rtol=2e-5, atol=1e-4,
                                   err_msg=f"call {i}")


def test_plan_follows_aliasing_and_checks(opencl_backend):
    """A signature first seen without aliasing, then with out = b, stays correct; beta
    without out and host arrays are still refused after a plan exists."""
    be = opencl_backend
    rng = np.random.default_rng(12)
    x = rng.standard_normal((40, 40)).astype(np.float32)
    w = rng.standard_normal((40, 40)).astype(np.float32)
    dx, dw = be.asarray(x), be.asarray(w)
    out = be.empty((40, 40))
    be.gemm(dx, dw, out=out)
    np.testing.assert_allclose(be.to_host(out), _ref(x, w, False, False), rtol=2e-5,
                               atol=1e-4)
    be.gemm(dx, dw, out=dw)  # now out is b: b must be read (packed) before it is written
    np.testing.assert_allclose(be.to_host(dw), _ref(x, w, False, False), rtol=2e-5,
                               atol=1e-4)
    be.gemm(dx, dx)  # a plan with out=None ...
    with pytest.raises(ConfigError, match="beta != 0 needs an 'out'"):
        be.gemm(dx, dx, beta=1.0)  # ... does not skip the beta check
    with pytest.raises(DTypeError, match="device array"):
        be.gemm(x, dx)


@pytest.mark.parametrize("m,n,k,ta,tb", [(1031, 7, 33, False, True), (2049, 17, 5, True, False),
                                         (1024, 1, 257, False, False),
                                         (1500, 31, 70, True, True)])
def test_tall_narrow_products(opencl_backend, m, n, k, ta, tb):
    """Many rows, N < 32 (im2col convolutions): 4-row narrow blocks, fused epilogue."""
    be = opencl_backend
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    got = be.to_host(be.gemm(be.asarray(a), be.asarray(b), trans_a=ta, trans_b=tb,
                             bias=be.asarray(bias), activation="relu"))
    want = np.maximum(_ref(a, b, ta, tb) + bias, 0)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.sqrt(k) * 4)


@pytest.mark.parametrize("m,n,k", [(7, 257, 100), (65, 1000, 65), (3, 64, 32), (70, 129, 513)])
def test_transposing_pack_of_b(opencl_backend, m, n, k):
    """trans_b packs B through 16 x 16 register transposes (full panels and K chunks) and
    element copies (the rest), for every column-block width."""
    from dataclasses import replace

    be = opencl_backend
    rng = np.random.default_rng(n * 3 + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k)).astype(np.float32)
    big = np.zeros((n + 2, k + 5), np.float32)  # b as a view with an offset and a long row
    big[1:n + 1, 3:k + 3] = b
    db = be.asarray(big)[1:n + 1, 3:k + 3]
    saved = be.gemm_config
    try:
        for vw, nv in ((16, 4), (16, 2), (16, 1), (8, 2)):
            be.gemm_config = replace(saved, vw=vw, nv=nv)
            got = be.to_host(be.gemm(be.asarray(a), db, trans_b=True))
            np.testing.assert_allclose(got, _ref(a, b, False, True), rtol=2e-5,
                                       atol=2e-5 * np.sqrt(k) * 4, err_msg=f"{vw}x{nv}")
            wp = be.pack_b(db, trans_b=True)
            np.testing.assert_allclose(be.to_host(be.gemm(be.asarray(a), wp)),
                                       _ref(a, b, False, True), rtol=2e-5,
                                       atol=2e-5 * np.sqrt(k) * 4)
    finally:
        be.gemm_config = saved


def test_repeated_launches_reuse_arguments(opencl_backend):
    """Identical launches skip setting arguments, yet see new data in the same buffers;
    alternating operands re-set them (every call checked against the reference)."""
    be = opencl_backend
    rng = np.random.default_rng(13)
    xs = [rng.standard_normal((64, 84)).astype(np.float32) for _ in range(2)]
    w = rng.standard_normal((10, 84)).astype(np.float32)  # used as W^T: packs every call
    dxs, dw = [be.asarray(x) for x in xs], be.asarray(w)
    outs, bias = [be.empty((64, 10)) for _ in range(2)], be.zeros((10,))
    for i in (0, 1, 0, 0, 1):
        be.gemm(dxs[i], dw, trans_b=True, out=outs[i], bias=bias, activation="relu")
        np.testing.assert_allclose(be.to_host(outs[i]), np.maximum(_ref(xs[i], w, False, True),
                                                                   0), rtol=2e-5, atol=1e-4)
    be.fill(dxs[0], 0.5)  # same buffers, new contents: the same arguments, a new product
    be.gemm(dxs[0], dw, trans_b=True, out=outs[0], bias=bias, activation="relu")
    want = np.maximum(_ref(np.full((64, 84), 0.5, np.float32), w, False, True), 0)
    np.testing.assert_allclose(be.to_host(outs[0]), want, rtol=2e-5, atol=1e-4)
