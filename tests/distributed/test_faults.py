"""Engines leaving and joining a real cluster: SIGKILL mid-epoch, a new engine joining,
SIGSTOP, losing the last one.

The tests run in order: 3 engines -> 2 (killed) -> 3 (one joins) -> 2 (stopped) -> the
last engine of a subset killed.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from mao_lab.distributed import Cluster, DataParallel
from mao_lab.distributed.faults import kill_engine
from mao_lab.errors import ClusterError

from .helpers import iris_model

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster3():
    with Cluster.local(n=3, heartbeat_ms=400) as cluster:
        pids = [e.pid for e in cluster.inventory()]
        yield cluster
        for pid in pids:  # whatever the tests left stopped or alive
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def _wait_for_step(handle, step, timeout=60.0):
    deadline = time.monotonic() + timeout
    while handle.progress["step"] < step and not handle.done and time.monotonic() < deadline:
        time.sleep(0.02)
    assert handle.progress["step"] >= step, handle


def test_sigkill_mid_epoch_reassigns_every_unfinished_sample(cluster3, data):
    x, y = data
    victim = cluster3.ids[2]
    dp = DataParallel(iris_model(), cluster3, strategy="ps", global_batch_size=12,
                      slowdown={e: 2.0 for e in cluster3.ids})
    handle = dp.fit(x, y, epochs=2, seed=0, block=False)
    _wait_for_step(handle, 20)  # epoch 0 has 100 steps
    kill_engine(cluster3, victim, signal.SIGKILL)
    history = handle.wait(timeout=120)
    lost = [ev for ev in handle.events if ev["type"] == "engine_lost"]
    assert [ev["engine"] for ev in lost] == [victim] and lost[0]["reassigned"] > 0
    assert lost[0]["step"] < 100  # detected mid-epoch
    assert history.history["samples"] == [1200, 1200]
    assert history.history["exactly_once"] == [True, True]
    assert set(handle.shares) == set(cluster3.ids) - {victim}
    assert sum(handle.shares.values()) == pytest.approx(1.0)


def test_a_new_engine_joins_at_the_next_epoch(cluster3, data):
    x, y = data
    before = list(cluster3.ids)
    assert len(before) == 2
    dp = DataParallel(iris_model(), cluster3, strategy="ps", global_batch_size=12,
                      slowdown={e: 2.0 for e in before})
    handle = dp.fit(x, y, epochs=1000, seed=0, block=False)
    _wait_for_step(handle, 5)
    (new,) = cluster3.add_engines(1)
    assert new not in before and cluster3.engine(new).pid > 0
    deadline = time.monotonic() + 120
    while not any(ev["type"] == "engine_joined" for ev in handle.events):
        assert time.monotonic() < deadline and not handle.done, handle
        time.sleep(0.05)
    epoch = handle.progress["epoch"]
    while handle.progress["epoch"] < epoch + 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # one whole epoch with the newcomer
    handle.stop()
    history = handle.wait(timeout=120)
    joined = [ev for ev in handle.events if ev["type"] == "engine_joined"]
    assert [ev["engine"] for ev in joined] == [new]
    assert len(history.history["samples"]) >= epoch + 1
    assert all(history.history["exactly_once"]) and set(history.history["samples"]) == {1200}
    assert set(handle.shares) == set(before) | {new} and handle.shares[new] > 0.1
    assert handle.metrics[new]["samples"] > 0


def test_sigstop_is_detected_like_a_dead_engine(cluster3, data):
    x, y = data
    alive = [e for e in cluster3.ids]
    assert len(alive) == 3
    victim = alive[1]
    dp = DataParallel(iris_model(), cluster3, strategy="ps", global_batch_size=12,
                      engine_timeout=3.0, slowdown={e: 2.0 for e in alive})
    handle = dp.fit(x, y, epochs=2, seed=1, block=False)
    _wait_for_step(handle, 10)
    t0 = time.monotonic()
    kill_engine(cluster3, victim, signal.SIGSTOP)
    while not any(ev["type"] == "engine_lost" for ev in handle.events):
        assert time.monotonic() - t0 < 30, "a stopped engine was not detected"
        time.sleep(0.05)
    history = handle.wait(timeout=120)
    assert history.history["exactly_once"] == [True, True]
    assert list(handle.shares) == [alive[0], alive[2]]


def test_losing_the_last_engine_is_a_clear_error_and_keeps_the_checkpoint(
        cluster3, data, tmp_path):
    x, y = data
    last = cluster3.ids[0]
    ckpt = str(tmp_path / "ckpt")
    one = cluster3.subset([last])
    dp = DataParallel(iris_model(), one, strategy="ps", global_batch_size=120,
                      slowdown={last: 3.0})
    handle = dp.fit(x, y, epochs=50, seed=0, block=False, checkpoint=ckpt)
    _wait_for_step(handle, 25)  # 10 steps per epoch: at least 2 checkpoints written
    kill_engine(one, last, signal.SIGKILL)
    with pytest.raises(ClusterError, match="every engine was lost .*the last checkpoint is "
                                           "intact"):
        handle.wait(timeout=60)
    assert os.path.exists(os.path.join(ckpt, "checkpoint.json"))
    model = iris_model(seed=7)
    from mao_lab.distributed.trainer import load_checkpoint

    meta = load_checkpoint(model, ckpt)
    assert meta["epoch"] >= 2 and meta["step"] == 10 * meta["epoch"]
