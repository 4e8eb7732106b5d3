"""The numpy backend splitting large ops over threads (``_numpy_threads``): values equal
the float64 reference / the one-thread result, BLAS's thread count is restored, errors
reach the caller, concurrent and nested use stays correct."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mao_lab.backends import _numpy_threads as T
from mao_lab.backends import get_backend
from mao_lab.backends._numpy_fast import _level1_blas

pytestmark = pytest.mark.skipif(not _level1_blas() or not _level1_blas().threads(),
                                reason="numpy's BLAS exports no thread-count calls")


@pytest.fixture
def be():
    return get_backend("numpy")


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv("MAO_LAB_NUMPY_THREADS", raising=False)
    with threadpool_limits(2, user_api="blas"):
        yield


def _ref(a, b, ta, tb):
    return (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)


# (M, K, N): the MLP's forward, weight-gradient and input-gradient products, and odd ones
SHAPES = [(64, 784, 300), (784, 64, 300), (64, 300, 784), (257, 513, 33), (33, 999, 257)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_split_gemm_matches_reference(be, two_threads, m, k, n, ta, tb):
    rng = np.random.default_rng(m * 7 + n)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    assert T.POOL.parts(m * n * k, max(m, n)) == 2
    ref = _ref(a, b, ta, tb)
    for act in ("linear", "relu", "softmax"):
        y = be.gemm(a, b, trans_a=ta, trans_b=tb, bias=bias, activation=act)
        r = ref + bias
        if act == "relu":
            r = np.maximum(r, 0)
        elif act == "softmax":
            r = np.exp(r - r.max(1, keepdims=True))
            r /= r.sum(1, keepdims=True)
        np.testing.assert_allclose(y, r, rtol=1e-4, atol=2e-4 * np.sqrt(k))
    out = rng.standard_normal((m, n)).astype(np.float32)
    before = out.astype(np.float64)
    be.gemm(a, b, trans_a=ta, trans_b=tb, out=out, alpha=0.5, beta=0.75)
    np.testing.assert_allclose(out, 0.5 * ref + 0.75 * before, rtol=1e-4,
                               atol=2e-4 * np.sqrt(k))
    assert _level1_blas().threads() == 2  # restored after the split


def test_split_gemm_float64_equals_one_thread(be, two_threads):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((96, 700)), rng.standard_normal((700, 333))
    y2 = be.gemm(a, b, bias=np.ones(333), activation="tanh")
    with threadpool_limits(1, user_api="blas"):
        y1 = be.gemm(a, b, bias=np.ones(333), activation="tanh")
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)


def test_parts_rules(two_threads, monkeypatch):
    assert T.POOL.parts(T.MIN_WORK - 1, 1000) == 1  # too little work
    assert T.POOL.parts(T.MIN_WORK, 20) == 1  # fewer than two grains of 16
    assert T.POOL.parts(T.MIN_WORK, 1000) == 2
    monkeypatch.setenv("MAO_LAB_NUMPY_THREADS", "1")
    assert T.POOL.parts(1 << 30, 1000) == 1
    monkeypatch.setenv("MAO_LAB_NUMPY_THREADS", "3")
    assert T.POOL.parts(1 << 30, 1000) == 3


def test_three_parts_on_two_cores(be, monkeypatch):
    monkeypatch.setenv("MAO_LAB_NUMPY_THREADS", "3")
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 784)).astype(np.float32)
    b = rng.standard_normal((784, 301)).astype(np.float32)
    np.testing.assert_allclose(be.gemm(a, b), _ref(a, b, False, False), rtol=1e-4, atol=6e-3)


def test_bounds_cover_the_extent():
    for extent in (1, 15, 16, 17, 300, 301):
        for n in (1, 2, 3, 8):
            cuts = [T.bounds(i, n, extent, 16) for i in range(n)]
            assert cuts[0][0] == 0 and cuts[-1][1] == extent
            assert all(cuts[i][1] == cuts[i + 1][0] for i in range(n - 1))
            assert all(lo % 16 == 0 for lo, _ in cuts)


def test_error_in_a_part_reaches_the_caller_and_restores_blas(be, two_threads):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 784)).astype(np.float32)
    b = rng.standard_normal((784, 300)).astype(np.float32)
    out = np.zeros((64, 300), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.gemm(a, b, out=out)
    assert _level1_blas().threads() == 2
    assert not T.POOL._lock.locked()
    np.testing.assert_allclose(be.gemm(a, b), _ref(a, b, False, False), rtol=1e-4, atol=6e-3)


def test_run_reports_the_first_worker_error_after_all_parts_finish():
    seen = []

    def fn(i):
        seen.append(i)
        if i == 1:
            raise KeyError("part 1 failed")

    with pytest.raises(KeyError, match="part 1 failed"):
        T.POOL.run(fn, 2)
    assert sorted(seen) == [0, 1]
    assert not T.POOL._lock.locked()


def test_nested_split_runs_on_the_caller():
    seen = []

    def outer(i):
        assert T.POOL.parts(1 << 30, 1000) == 1  # a region is active
        me = threading.get_ident()
        # not deadlocking: both inner parts run right here, on the outer part's thread
        T.POOL.run(lambda j: seen.append((i, j, me, threading.get_ident())), 2)

    T.POOL.run(outer, 2)
    assert sorted((i, j) for i, j, _, _ in seen) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(outer_tid == inner_tid for _, _, outer_tid, inner_tid in seen)


def test_parts_nobody_picked_up_run_on_the_caller():
    """A worker that wakes late finds its parts done by the caller (no waiting for it)."""
    ran = []
    T.POOL.run(lambda i: ran.append(i), 2)  # make sure the worker exists
    hold = threading.Event()
    blocker = T._Job(lambda i: hold.wait(5), 2)
    T.POOL._workers[0].inbox.put(blocker)  # keep the worker busy
    try:
        ran.clear()
        T.POOL.run(lambda i: ran.append((i, threading.get_ident())), 2)
    finally:
        hold.set()
    assert sorted(ran) == [(0, threading.get_ident()), (1, threading.get_ident())]


def test_out_overlapping_an_input_is_not_split(be, two_threads):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 300)).astype(np.float32)
    b = rng.standard_normal((300, 300)).astype(np.float32)
    ref = _ref(a, b, False, False)
    be.gemm(a, b, out=a)
    np.testing.assert_allclose(a, ref, rtol=1e-4, atol=5e-3)


def test_concurrent_callers_get_correct_results(be, two_threads):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((64, 784)).astype(np.float32)
    b = rng.standard_normal((784, 300)).astype(np.float32)
    ref = _ref(a, b, False, False)
    errors = []

    def hammer():
        try:
            for _ in range(30):
                np.testing.assert_allclose(be.gemm(a, b), ref, rtol=1e-4, atol=6e-3)
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_split_sgd_equals_one_thread_bitwise(be, two_threads):
    rng = np.random.default_rng(6)
    p, g, v = (rng.standard_normal(784 * 300 + 7).astype(np.float32) for _ in range(3))
    p1, v1 = p.copy(), v.copy()
    be.sgd_update(p, g, v, lr=0.05, momentum=0.9)
    with threadpool_limits(1, user_api="blas"):
        be.sgd_update(p1, g, v1, lr=0.05, momentum=0.9)
    assert np.array_equal(v, v1) and np.array_equal(p, p1)


def test_blas_gemm_on_column_slices():
    blas = _level1_blas()
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    w = rng.standard_normal((7, 9)).astype(np.float32)
    c = np.ones((5, 9), np.float32)
    assert blas.gemm(a, w[:, 2:6], c[:, 1:5], False, False, 2.0, 0.5)
    np.testing.assert_allclose(c[:, 1:5], 2 * a @ w[:, 2:6] + 0.5, rtol=1e-5, atol=1e-5)
    assert (c[:, :1] == 1).all() and (c[:, 5:] == 1).all()  # outside the slice untouched
    assert not blas.gemm(a, w, np.ones((9, 5), np.float32).T, False, False, 1.0, 0.0)


# LeNet-5's two convolutions (with 'same' padding on the first), batch 64 and an odd batch
CONVS = [((64, 1, 28, 28), (6, 1, 5, 5), (2, 2, 2, 2)), ((64, 6, 14, 14), (16, 6, 5, 5), (0,) * 4),
         ((37, 3, 17, 19), (8, 3, 3, 3), (1, 1, 1, 1))]


def _one_thread(fn):
    with threadpool_limits(1, user_api="blas"):
        return fn()


@pytest.mark.parametrize("x_shape,w_shape,pad", CONVS)
def test_split_conv_ops_equal_one_thread(be, two_threads, x_shape, w_shape, pad):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    bias = rng.standard_normal(w_shape[0]).astype(np.float32)
    oh, ow = (x_shape[2] + pad[0] + pad[1] - w_shape[2] + 1,
              x_shape[3] + pad[2] + pad[3] - w_shape[3] + 1)
    assert be._conv_parts(x_shape[0], w_shape, oh, ow) == 2
    dy = rng.standard_normal((x_shape[0], w_shape[0], oh, ow)).astype(np.float32)

    def run():
        y = be.conv2d_forward(x, w, bias, padding=pad, activation="relu")
        dx = be.conv2d_backward_data(dy, w, x_shape, padding=pad)
        dw = np.full(w_shape, 0.5, np.float32)
        be.conv2d_backward_filter(dy, x, w_shape, padding=pad, out=dw, beta=1.0)
        return y, dx, dw

    for got, want in zip(run(), _one_thread(run)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,pad", CONVS[:2])
@pytest.mark.parametrize("need_dx", [True, False])
def test_split_conv_maxpool_equals_one_thread(be, two_threads, x_shape, w_shape, pad, need_dx):
    rng = np.random.default_rng(sum(w_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    bias = rng.standard_normal(w_shape[0]).astype(np.float32)

    def run():
        y, st = be.conv2d_maxpool_forward(x, w, bias, padding=pad, activation="relu",
                                          pool=(2, 2))
        dy = np.asarray(np.random.default_rng(9).standard_normal(y.shape), np.float32)
        dw, db = np.zeros(w_shape, np.float32), np.ones(w_shape[0], np.float32)
        dx = be.conv2d_maxpool_backward(dy, st, x, w, padding=pad, dw_out=dw, db_out=db,
                                        beta=1.0, need_dx=need_dx)
        return st, (y, dw, db) + ((dx,) if need_dx else ())

    st2, got = run()
    assert type(st2).__name__ == "SplitState" and len(st2.parts) == 2
    st1, want = _one_thread(run)
    assert type(st1).__name__ == "PooledConvState"
    assert np.array_equal(got[0], want[0])  # forward values are per sample: bitwise equal
    for g, v in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g, v, rtol=1e-5, atol=1e-4)
    if not need_dx:
        assert len(got) == 3


def test_compute_scope_keeps_blas_at_one_thread_and_splits_with_the_old_count(be, two_threads):
    blas = _level1_blas()
    with be.compute_scope():
        assert blas.threads() == 1 and T.POOL.threads() == 2
        with be.compute_scope():  # nested: no change
            assert blas.threads() == 1 and T.POOL.threads() == 2
        assert blas.threads() == 1
        rng = np.random.default_rng(8)
        a = rng.standard_normal((64, 784)).astype(np.float32)
        b = rng.standard_normal((784, 300)).astype(np.float32)
        np.testing.assert_allclose(be.gemm(a, b), _ref(a, b, False, False), rtol=1e-4,
                                   atol=6e-3)
        assert blas.threads() == 1  # a split inside the scope leaves BLAS at one thread
    assert blas.threads() == 2 and T.POOL.threads() == 2


def test_fit_runs_in_the_scope_and_restores_blas(two_threads):
    from mao_lab import Sequential
    from mao_lab.layers import Dense

    seen = []

    class Probe(Dense):
        def forward(self, x, training=False, logits=False):
            seen.append((_level1_blas().threads(), T.POOL.threads()))
            return super().forward(x, training, logits)

    model = Sequential([Probe(300, activation="relu"), Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((128, 784)).astype(np.float32), rng.integers(0, 10, 128)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert seen and set(seen) == {(1, 2)}
    assert _level1_blas().threads() == 2


def test_threads_env_of_one_leaves_blas_alone_in_the_scope(be, two_threads, monkeypatch):
    monkeypatch.setenv("MAO_LAB_NUMPY_THREADS", "1")
    with be.compute_scope():
        assert _level1_blas().threads() == 2 and T.POOL.threads() == 1
