"""strategy="mpi": engines launched with mpiexec allreduce weighted gradients every step."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.data import load_iris
from mao_lab.distributed import Cluster, DataParallel, worker
from mao_lab.distributed.sync import flatten, unflatten

from .helpers import iris_model, max_diff, replay

pytestmark = pytest.mark.cluster
pytest.importorskip("mpi4py")


@pytest.fixture(scope="module")
def mpi2():
    with Cluster.local(n=2, mpi=True) as cluster:
        yield cluster


def test_mpi_cluster_inventory_has_ranks(mpi2):
    inv = mpi2.inventory()
    assert mpi2.mpi and sorted(e.mpi_rank for e in inv) == [0, 1]
    assert {e.mpi_size for e in inv} == {2}


def test_mpi_unequal_shares_match_one_process(mpi2):
    x, y = load_iris().numpy()
    model, ref = iris_model(), iris_model()
    ref.set_weights(model.get_weights())
    dp = DataParallel(model, mpi2, balance=[0.3, 0.7], global_batch_size=20,
                      record_batches=True)
    assert dp.strategy == "mpi"  # "auto" picks MPI on MPI engines
    hist = dp.fit(x, y, epochs=3, seed=2)
    assert hist.history["samples"] == [150] * 3 and all(hist.history["exactly_once"])
    replay(ref, x, y, dp.batches)
    assert len(dp.batches) == 3 * 8
    assert max_diff(model.get_weights(), ref.get_weights()) < 2e-6
    # every rank holds the same weights as the client
    for e in mpi2.ids:
        assert max_diff(mpi2.client[e].apply_sync(worker.weights), model.get_weights()) == 0
    m = dp.handle.metrics
    assert all(m[e]["comm_s"] >= 0 and m[e]["wait_s"] >= 0 for e in mpi2.ids)


def test_mpi_speed_shares_follow_a_slow_rank(mpi2):
    x, y = load_iris().numpy()
    slow = mpi2.ids[0]
    dp = DataParallel(iris_model(), mpi2, balance="speed", global_batch_size=30,
                      slowdown={slow: 4.0}, round_seconds=0.05, drift=0.1)
    hist = dp.fit(x, y, epochs=4, seed=0)
    assert all(hist.history["exactly_once"])
    assert dp.handle.shares[slow] < 0.4


def test_mpi_wait_is_charged_to_the_rank_that_waits(mpi2):
    """One collective a step carries each rank's compute time: with equal shares and one
    rank slowed 4x, the fast rank spends its steps waiting inside the allreduce."""
    x, y = load_iris().numpy()
    slow, fast = mpi2.ids
    dp = DataParallel(iris_model(), mpi2, balance="equal", global_batch_size=30,
                      slowdown={slow: 4.0})
    hist = dp.fit(x, y, epochs=2, seed=0)
    assert all(hist.history["exactly_once"])
    m = dp.handle.metrics
    assert m[fast]["wait_s"] > 2 * m[slow]["wait_s"]
    assert m[fast]["wait_s"] > 0.5 * m[fast]["compute_s"]  # slow computes 4x as long
    assert all(m[e]["comm_s"] >= 0 for e in mpi2.ids)


def test_mpi_live_edit_applies_on_every_rank_at_a_round_boundary(mpi2):
    import time

    x, y = load_iris().numpy()
    model = iris_model()
    dp = DataParallel(model, mpi2, global_batch_size=10, round_seconds=0.05,
                      slowdown={e: 2.0 for e in mpi2.ids})
    handle = dp.fit(x, y, epochs=1000, block=False)
    deadline = time.monotonic() + 60
    while handle.progress["step"] < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    model.edit(0, units=20)
    while handle.pending_edits and time.monotonic() < deadline:
        time.sleep(0.02)
    step = handle.progress["step"]
    while handle.progress["step"] < step + 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    handle.stop()
    handle.wait(timeout=60)
    assert handle.edits[0]["applied_step"] >= handle.edits[0]["requested_step"]
    shapes = [[w.shape for w in mpi2.client[e].apply_sync(worker.weights)] for e in mpi2.ids]
    assert shapes[0] == shapes[1] and shapes[0][0] == (4, 20)
    # the ranks still agree after training on the edited model, and the client follows
    w = [mpi2.client[e].apply_sync(worker.weights) for e in mpi2.ids]
    assert max_diff(w[0], w[1]) == 0
    assert [a.shape for a in model.get_weights()] == shapes[0]


def test_flatten_roundtrip():
    a = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4, np.float32)]
    buf = flatten(a, 2.0, (5.0, 7.0))
    assert buf.tolist()[-2:] == [5.0, 7.0] and buf.size == 12
    back = unflatten(buf, a, 0.5)
    assert all(np.array_equal(u, v) for u, v in zip(back, a))


def test_mpi_rank_loss_stops_cleanly_and_resumes_elsewhere(mpi2, cluster2, tmp_path):
    """Runs last in this module: it uses the MPI cluster up."""
    import signal
    import time

    from mao_lab.distributed.faults import kill_engine
    from mao_lab.errors import ClusterError

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = rng.integers(0, 3, 600)
    ckpt = str(tmp_path / "ckpt")
    dp = DataParallel(iris_model(), mpi2, global_batch_size=12, round_seconds=0.05,
                      slowdown={e: 2.0 for e in mpi2.ids})
    handle = dp.fit(x, y, epochs=50, block=False, checkpoint=ckpt)
    deadline = time.monotonic() + 60
    while handle.progress["epoch"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_engine(mpi2, mpi2.ids[1], signal.SIGKILL)
    with pytest.raises(ClusterError, match=r"MPI training stopped: .*engine \d+ died.*"
                                           r"resume=<checkpoint dir>"):
        handle.wait(timeout=60)
    done = len(handle.history["loss"])
    assert done >= 1
    # continue on other engines (here: the parameter-server cluster)
    model = iris_model(seed=5)
    hist = DataParallel(model, cluster2, strategy="ps").fit(x, y, epochs=done + 2,
                                                            resume=ckpt)
    assert len(hist.history["loss"]) == done + 2 and hist.history["exactly_once"][-2:] == [
        True, True]
