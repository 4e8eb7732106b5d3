"""Training to a stated held-out accuracy within a fixed budget, and the same training on
OpenCL matching numpy step for step.

Stated figures (checked below):
* iris net 4-30-20-3 sigmoid, MSE, SGD lr 0.5, batch 4, 60 epochs, seeded stratified 120/30
  split: >= 90% held-out accuracy (typically 97-100%). The seed's lr 0.01 stalls near 67%.
* a small conv net (Conv2D 6@5x5 relu, MaxPool 2, Dense 10 softmax) on 1,500 digits of the
  bundled MNIST sample, 3 epochs of SGD momentum: >= 85% on 500 held-out digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab import Sequential, get_backend
from mao_lab.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from mao_lab.optimizers import SGD


def iris_net(seed: int) -> Sequential:
    return Sequential([Dense(30, activation="sigmoid"), Dense(20, activation="sigmoid"),
                       Dense(3, activation="sigmoid")], input_shape=(4,), seed=seed)


def iris_split():
    from mao_lab.data import load_iris

    train, test = load_iris().split([0.8, 0.2], seed=0)
    return train, test


@pytest.mark.parametrize("seed", [0, 1])
def test_iris_net_reaches_90_percent_held_out(seed):
    train, test = iris_split()
    m = iris_net(seed)
    m.compile(optimizer=SGD(0.5), loss="mse")
    m.fit(train, batch_size=4, epochs=60, verbose=0, seed=seed)
    assert m.evaluate(test)["accuracy"] >= 0.9


def test_small_convnet_on_mnist_sample():
    from mao_lab.data import load_mnist_sample

    ds = load_mnist_sample()
    train, test = ds.split([0.3, 0.1, 0.6], seed=0)[:2]
    m = Sequential([Conv2D(6, 5, activation="relu"), MaxPool2D(2), Flatten(),
                    Dense(10, activation="softmax")], input_shape=(1, 28, 28), seed=0)
    m.compile(optimizer=SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    h = m.fit(train, batch_size=32, epochs=3, verbose=0, seed=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert m.evaluate(test)["accuracy"] >= 0.85


def _opencl():
    try:
        return get_backend("opencl")
    except Exception:  # noqa: BLE001 - no device here
        return None


@pytest.mark.parametrize("arch", ["iris", "conv"])
def test_opencl_training_matches_numpy(arch):
    """Same seed, same batches: OpenCL weights track numpy's through several steps."""
    if _opencl() is None:
        pytest.skip("no OpenCL device on this machine")
    rng = np.random.default_rng(0)
    if arch == "iris":
        x = rng.normal(size=(32, 4)).astype(np.float32)
        y = rng.integers(0, 3, 32)

        def make():
            m = iris_net(3)
            m.compile(optimizer=SGD(0.5, momentum=0.5), loss="mse")
            return m
    else:
        x = rng.random((16, 1, 10, 10), dtype=np.float32)
        y = rng.integers(0, 4, 16)

        def make():
            m = Sequential([Conv2D(3, 3, padding="same", activation="relu"), BatchNorm(),
                            MaxPool2D(2), Flatten(), Dropout(0.25, seed=4),
                            Dense(4, activation="softmax")], input_shape=(1, 10, 10), seed=3)
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            return m

    ref, dev = make(), make()
    dev.to("opencl")
    for m in (ref, dev):
        m.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=1)
    for name, a, b in zip(ref.weight_names(), ref.get_weights(), dev.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(dev.predict(x), ref.predict(x), rtol=1e-3, atol=1e-4)
    assert dev.graph.nodes["input"]["device"].startswith("opencl")


def test_fit_on_a_parquet_stream_equals_in_memory_fit(tmp_path):
    """A stream of batches (never the whole dataset in memory) trains exactly like the same
    batches from memory."""
    import pyarrow.parquet as pq

    from mao_lab.data import load_iris
    from mao_lab.data.streaming import scan
    from mao_lab.errors import ConfigError

    ds = load_iris()
    pq.write_table(ds.table, tmp_path / "iris.parquet", row_group_size=32)
    stream = scan(tmp_path / "iris.parquet", batch_size=16)
    a, b = iris_net(0), iris_net(0)
    for m in (a, b):
        m.compile(optimizer=SGD(0.5, momentum=0.5), loss="mse")
    x, y = ds.numpy()
    ha = a.fit(stream, epochs=3, verbose=0, validation_data=(x, y))
    hb = b.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, validation_data=(x, y))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    assert ha.history["val_loss"] == pytest.approx(hb.history["val_loss"], rel=1e-6)
    with pytest.raises(ConfigError, match="use validation_data instead"):
        a.fit(stream, validation_split=0.2, verbose=0)
