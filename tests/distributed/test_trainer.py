"""DataParallel on a real 2-engine cluster: exactness, shares, non-blocking fit, edits,
checkpoints and bad input (parameter-server strategy)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from mao_lab.data import load_iris
from mao_lab.distributed import DataParallel, worker
from mao_lab.errors import ClusterError, ConfigError, ModelError

from .helpers import iris_model, max_diff, replay

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def iris():
    ds = load_iris()
    x, y = ds.numpy()
    return ds, x, y


def test_unequal_shares_match_one_process_on_the_global_batches(cluster2, iris):
    ds, x, y = iris
    model, ref = iris_model(), iris_model()
    ref.set_weights(model.get_weights())
    w0 = model.get_weights()
    dp = DataParallel(model, cluster2, strategy="ps", balance=[0.25, 0.75],
                      global_batch_size=16, record_batches=True)
    hist = dp.fit(ds, epochs=2, seed=3)  # a Dataset: rows travel as Arrow IPC
    assert hist.history["samples"] == [150, 150] and all(hist.history["exactly_once"])
    assert len(dp.batches) == 2 * 10  # ceil(150 / 16) steps per epoch
    assert sorted(np.concatenate(dp.batches[:10]).tolist()) == list(range(150))
    assert [len(b) for b in dp.batches[:9]] == [16] * 9  # 4 + 12 samples per step
    replay(ref, x, y, dp.batches)
    assert max_diff(model.get_weights(), w0) > 1e-2  # it trained
    assert max_diff(model.get_weights(), ref.get_weights()) < 2e-6
    # the engines hold the same model (one gradient behind: apply it and compare)
    eng = cluster2.client[cluster2.ids[0]].apply_sync(worker.weights)
    assert len(eng) == len(ref.get_weights())
    shares = dp.handle.shares
    assert shares == {cluster2.ids[0]: 0.25, cluster2.ids[1]: 0.75}
    m = dp.handle.metrics[cluster2.ids[1]]
    assert m["device"] == "numpy" and m["local_batch"] == 12 and m["rss"] > 0


def test_local_sgd_averages_parameters_weighted_by_samples(cluster2, iris):
    _, x, y = iris
    model = iris_model(lr=0.05, momentum=0.0)
    dp = DataParallel(model, cluster2, strategy="ps", sync_every=4, balance="equal",
                      global_batch_size=10)
    hist = dp.fit(x, y, epochs=3, seed=0)
    assert hist.history["samples"] == [150] * 3 and all(hist.history["exactly_once"])
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    # after the last round the client holds the sample-weighted average of the engines
    res = [cluster2.client[e].apply_sync(worker.weights) for e in cluster2.ids]
    assert max_diff(model.get_weights(), [(a + b) / 2 for a, b in zip(*res)]) < 1e-6


def test_slow_engine_gets_a_smaller_share(cluster2, iris):
    _, x, y = iris
    slow = cluster2.ids[1]
    model = iris_model()
    dp = DataParallel(model, cluster2, strategy="ps", balance="speed", global_batch_size=30,
                      slowdown={slow: 4.0}, drift=0.1)
    hist = dp.fit(x, y, epochs=3, seed=0)
    assert all(hist.history["exactly_once"])
    shares = dp.handle.shares
    assert shares[slow] < 0.4 < shares[cluster2.ids[0]]
    assert any(ev["type"] == "rebalance" for ev in dp.handle.events)
    speeds = {e: dp.handle.metrics[e]["speed"] for e in cluster2.ids}
    assert speeds[slow] < speeds[cluster2.ids[0]]
    assert dp.handle.metrics[slow]["local_batch"] < dp.handle.metrics[cluster2.ids[0]][
        "local_batch"]


def test_non_blocking_fit_live_metrics_edit_and_stop(cluster2, iris):
    _, x, y = iris
    model = iris_model()
    dp = DataParallel(model, cluster2, strategy="ps", global_batch_size=8,
                      slowdown={e: 3.0 for e in cluster2.ids}, publish_every=0.05)
    handle = dp.fit(x, y, epochs=200, seed=0, block=False)
    seen = []
    handle.subscribe(lambda kind, data: seen.append(kind))
    assert not handle.done
    deadline = time.monotonic() + 60
    while handle.progress["step"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ClusterError, match="a fit is already running on this cluster"):
        DataParallel(iris_model(), cluster2, strategy="ps").fit(x, y)
    model.edit(0, units=24)  # a live edit on the client's model
    while (not handle.edits or handle.edits[0]["applied_step"] is None) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    edit = handle.edits[0]
    assert edit["type"] == "edit" and edit["applied_step"] >= edit["requested_step"]
    step = handle.progress["step"]
    while handle.progress["step"] < step + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    handle.stop()
    history = handle.wait(timeout=60)
    assert handle.done and handle.progress["epoch"] < 200 and handle.pending_edits == []
    assert set(handle.metrics) == set(cluster2.ids)
    assert all(m["loss"] is not None and m["mem_percent"] > 0 for m in handle.metrics.values())
    assert {"metrics", "event", "done"} <= set(seen)
    snap = handle.snapshot()
    assert snap["done"] and snap["edits"][0]["applied_step"] == edit["applied_step"]
    # every engine trains the edited architecture
    cfgs = cluster2.client[:].apply_sync(
        lambda: __import__("mao_lab.distributed.worker").distributed.worker.STATE[
            "model"].get_config()["layers"][0]["config"]["units"])
    assert cfgs == [24, 24] and model.layers[0].units == 24
    assert history is not None


def test_checkpoint_resume_is_bit_identical(cluster2, iris, tmp_path):
    _, x, y = iris
    full = iris_model()
    DataParallel(full, cluster2, strategy="ps", balance=[0.4, 0.6],
                 global_batch_size=16).fit(x, y, epochs=3, seed=5)
    part = iris_model()
    ckpt = str(tmp_path / "ckpt")
    DataParallel(part, cluster2, strategy="ps", balance=[0.4, 0.6],
                 global_batch_size=16).fit(x, y, epochs=2, seed=5, checkpoint=ckpt)
    resumed = iris_model(seed=99)  # other initial weights: the checkpoint replaces them
    hist = DataParallel(resumed, cluster2, strategy="ps", balance=[0.4, 0.6],
                        global_batch_size=16).fit(x, y, epochs=3, seed=5, resume=ckpt)
    assert len(hist.history["loss"]) == 3
    for a, b in zip(full.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)


def test_bad_input_gives_clear_errors(cluster2, iris):
    _, x, y = iris
    from mao_lab import Sequential
    from mao_lab.layers import Dense

    raw = Sequential([Dense(3)], input_shape=(4,))
    with pytest.raises(ModelError, match="not compiled"):
        DataParallel(raw, cluster2)
    model = iris_model()
    with pytest.raises(ConfigError, match="strategy='mpi' needs engines launched with MPI"):
        DataParallel(model, cluster2, strategy="mpi")
    with pytest.raises(ConfigError, match="fewer samples than engines: 1 samples for 2"):
        DataParallel(model, cluster2).fit(x[:1], y[:1])
    with pytest.raises(ConfigError, match="expected 2 shares"):
        DataParallel(model, cluster2, balance=[1.0])
    with pytest.raises(ConfigError, match="sync_every must be an integer >= 1"):
        DataParallel(model, cluster2, sync_every=0)
    with pytest.raises(ClusterError, match=rf"engine {cluster2.ids[0]} failed: DeviceError"):
        DataParallel(model, cluster2, device={cluster2.ids[0]: "opencl:9:9"}).fit(x, y)


def test_model_fit_hands_off_to_the_cluster(cluster2, iris):
    ds, x, y = iris
    model = iris_model(lr=0.05, momentum=0.9)
    hist = model.fit(x, y, batch_size=16, epochs=10, cluster=cluster2, strategy="ps",
                     balance="equal", validation_data=(x[:50], y[:50]), verbose=0, seed=0)
    assert model.history is hist and len(hist.history["loss"]) == 10
    assert "val_loss" in hist.history and all(hist.history["exactly_once"])
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert model.evaluate(x, y)["accuracy"] > 0.9
    inv = cluster2.inventory()
    assert all(e.device == "numpy" and e.samples_per_s > 0 for e in inv)


def test_fastest_device_is_chosen_per_engine_by_timing_this_model(cluster2, iris):
    _, x, y = iris
    dp = DataParallel(iris_model(), cluster2, strategy="ps", device="fastest",
                      global_batch_size=32)
    dp.fit(x, y, epochs=1)
    chosen = [ev for ev in dp.handle.events if ev["type"] == "device_chosen"]
    assert sorted(ev["engine"] for ev in chosen) == cluster2.ids
    for ev in chosen:
        speeds = ev["speeds"]
        assert "numpy" in speeds and ev["device"] == max(speeds, key=speeds.get)
        assert cluster2.engine(ev["engine"]).device == ev["device"]


def test_engines_read_their_own_row_groups_of_a_parquet_dataset(cluster2, iris, tmp_path,
                                                                 monkeypatch):
    from mao_lab.data.loaders import save_parquet
    from mao_lab.distributed import trainer
    from mao_lab.distributed.transport import Source

    ds, x, y = iris
    path = str(tmp_path / "iris.parquet")
    save_parquet(ds, path, row_group_size=10)
    src = Source(path)
    assert src.n == 150 and len(src.groups) == 15
    pay = src.payload(np.array([3, 140, 12]))
    assert [len(r) for _, r in pay["parquet"]] == [3] and pay["num_rows"] == 30
    xs, ys = src.arrays(np.array([3, 140, 12]))
    assert np.array_equal(xs, x[[3, 140, 12]]) and np.array_equal(ys, y[[3, 140, 12]])
    model, ref = iris_model(), iris_model()
    ref.set_weights(model.get_weights())
    dp = DataParallel(model, cluster2, strategy="ps", balance=[0.5, 0.5], global_batch_size=10,
                      record_batches=True)
    hist = dp.fit(path, epochs=1, seed=0)
    assert hist.history["exactly_once"] == [True]
    assert dp.batches[0][:5].max() < 75  # engine 0 owns rows 0..74: row groups 0..7
    replay(ref, x, y, dp.batches)
    assert max_diff(model.get_weights(), ref.get_weights()) < 2e-6
    # a path an engine cannot read: a clear error naming the engine
    monkeypatch.setattr(trainer, "_check_first_rows", lambda m, s: os.remove(path))
    with pytest.raises(ClusterError, match=r"engine \d+ failed: DataError: .*iris.parquet"):
        DataParallel(iris_model(), cluster2, strategy="ps").fit(path)
