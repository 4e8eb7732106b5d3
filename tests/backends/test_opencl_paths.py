"""OpenCL fast paths that the table-driven conformance suite does not reach: reshaping a
view that starts inside a buffer, and max-pool backward on the OpenCL forward's own
(non-overlapping, store-instead-of-atomic) indices."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.backends import get_backend

REF = get_backend("numpy")


def test_reshape_of_an_offset_view(opencl_backend):
    be = opencl_backend
    host = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    view = be.asarray(host)[1:3]  # starts 6 elements into the buffer
    flat = be.reshape(view, (12,))
    np.testing.assert_array_equal(be.to_host(flat), host[1:3].reshape(12))
    back = be.reshape(flat, (3, 4))
    np.testing.assert_array_equal(be.to_host(back), host[1:3].reshape(3, 4))


@pytest.mark.parametrize("shape,pool,stride", [
    ((3, 2, 8, 8), (2, 2), (2, 2)),      # non-overlapping: plain stores
    ((2, 3, 9, 7), (3, 3), (3, 3)),
    ((2, 2, 7, 7), (3, 3), (2, 2)),      # overlapping: the gather
    ((2, 3, 10, 9), (3, 2), (1, 1)),     # every element in up to 6 windows
])
def test_maxpool_backward_on_its_own_indices(opencl_backend, shape, pool, stride):
    be = opencl_backend
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    y_ref, idx_ref = REF.maxpool2d_forward(x, pool, stride=stride)
    y, idx = be.maxpool2d_forward(be.asarray(x), pool, stride=stride)
    np.testing.assert_array_equal(be.to_host(y), y_ref)
    np.testing.assert_array_equal(be.to_host(idx), idx_ref)
    dy = rng.standard_normal(y_ref.shape).astype(np.float32)
    dx = be.to_host(be.maxpool2d_backward(be.asarray(dy), idx, shape))
    np.testing.assert_allclose(dx, REF.maxpool2d_backward(dy, idx_ref, shape), rtol=1e-6,
                               atol=1e-6)


def test_overlapping_maxpool_backward_is_deterministic_and_exact(opencl_backend):
    """Ties on purpose (integer data): many windows route to one element; the gather sums
    them in window order, the same on every run, and exactly (integer-valued dy)."""
    be = opencl_backend
    rng = np.random.default_rng(2)
    shape = (4, 3, 13, 11)
    x = rng.integers(0, 3, shape).astype(np.float32)
    y, idx = be.maxpool2d_forward(be.asarray(x), (3, 3), stride=(1, 1), padding=(1, 1, 1, 1))
    _, idx_ref = REF.maxpool2d_forward(x, (3, 3), stride=(1, 1), padding=(1, 1, 1, 1))
    dy = rng.integers(-4, 5, tuple(y.shape)).astype(np.float32)
    runs = [be.to_host(be.maxpool2d_backward(be.asarray(dy), idx, shape)) for _ in range(3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])
    np.testing.assert_array_equal(runs[0], REF.maxpool2d_backward(dy, idx_ref, shape))
