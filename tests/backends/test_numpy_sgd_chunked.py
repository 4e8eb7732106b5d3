"""The numpy backend's momentum-SGD fast paths (BLAS level 1 from numpy's own BLAS, or numpy
in cache-sized chunks) against the whole-array numpy update."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.backends import _numpy_fast
from mao_lab.backends.numpy_backend import NumpyBackend


@pytest.mark.parametrize("blas", [True, False], ids=["blas", "chunked"])
@pytest.mark.parametrize("shape", [(300, 250), (2 * _numpy_fast.SGD_CHUNK + 7,)])
def test_large_momentum_sgd_matches_whole_array_update(shape, blas, monkeypatch):
    if not blas:
        monkeypatch.setattr(_numpy_fast, "_BLAS", False)
    else:
        assert _numpy_fast._level1_blas(), "numpy's OpenBLAS exports CBLAS level 1"
    rng = np.random.default_rng(0)
    be = NumpyBackend()
    p = rng.standard_normal(shape).astype(np.float32)
    v = rng.standard_normal(shape).astype(np.float32)
    p_ref, v_ref = p.copy(), v.copy()
    for _ in range(3):
        g = rng.standard_normal(shape).astype(np.float32)
        be.sgd_update(p, g, v, lr=0.05, momentum=0.9)
        v_ref *= 0.9
        v_ref += g
        p_ref -= np.float32(0.05) * v_ref
    np.testing.assert_array_equal(v, v_ref)
    if blas:  # axpy may fuse p - lr*v into one rounding: a last-bit difference per step
        np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(p, p_ref)


def test_chunked_path_matches_float64_reference():
    rng = np.random.default_rng(1)
    be = NumpyBackend()
    shape = (300, 250)
    p64 = rng.standard_normal(shape)
    g64 = rng.standard_normal(shape)
    p, g, v = p64.astype(np.float32), g64.astype(np.float32), np.zeros(shape, np.float32)
    be.sgd_update(p, g, v, lr=0.1, momentum=0.5)
    np.testing.assert_allclose(p, p64 - 0.1 * g64, rtol=1e-5, atol=1e-6)


def test_level1_lookup_refuses_a_library_without_blas(tmp_path):
    from mao_lab.backends import _numpy_blas

    assert _numpy_blas._bind(str(tmp_path / "missing.so")) is None
    import ctypes.util

    libm = ctypes.util.find_library("m")  # a real shared library that has no CBLAS
    assert libm is None or _numpy_blas._bind(libm) is None
