"""The zoo: documented parameter counts and shapes, the registry's errors, and training to
stated accuracies on the bundled data within small fixed budgets."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from mao_lab import zoo
from mao_lab.data import load_iris, load_mnist_sample
from mao_lab.errors import ConfigError
from mao_lab.model import Sequential

PARAMS = {"iris": 833, "fc300": 238_510, "fc1000": 795_010, "fc300_100": 266_610,
          "lenet1": 3_246, "lenet4": 51_050, "lenet5": 61_706, "boosted_lenet4": 153_150}


def _one_blas_thread():
    """Training tests run with one BLAS thread: spinning BLAS threads on a busy machine
    make small GEMMs hundreds of times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the bench extra
        return contextlib.nullcontext()
    return threadpool_limits(1)


def test_names_are_the_documented_models():
    assert zoo.names() == list(PARAMS)


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_counts(name):
    model = zoo.get(name)
    assert model.count_params() == PARAMS[name] == zoo.info(name).params


def test_lenet5_layers_shapes_and_counts():
    m = zoo.get("lenet5")
    shapes = [la.output_shape for la in m.layers]
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,),
                      (84,), (10,)]
    assert [la.count_params() for la in m.layers] == [156, 0, 2416, 0, 0, 48120, 10164, 850]
    assert m.layers[0].get_config()["padding"] == "same"


def test_lenet1_and_lenet4_shapes():
    assert [la.output_shape for la in zoo.get("lenet1").layers] == [
        (4, 24, 24), (4, 12, 12), (12, 8, 8), (12, 4, 4), (192,), (10,)]
    assert [la.output_shape for la in zoo.get("lenet4").layers] == [
        (4, 28, 28), (4, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,), (10,)]


@pytest.mark.parametrize("name", [n for n in PARAMS if n not in ("iris", "boosted_lenet4")])
def test_mnist_models_forward_to_probabilities(name):
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    p = zoo.get(name).predict(x)
    assert p.shape == (3, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_iris_forward_and_defaults():
    m = zoo.get("iris")
    assert m.predict(np.zeros((5, 4), np.float32)).shape == (5, 3)
    assert [la.get_config()["activation"] for la in m.layers] == ["sigmoid"] * 3
    assert m.optimizer.learning_rate == pytest.approx(0.01)
    assert zoo.info("iris").fit == {"batch_size": 4, "epochs": 100}


def test_registry_aliases_options_and_errors():
    assert zoo.info("LeNet-5").name == "lenet5"
    assert zoo.info("FC-300-100").name == "fc300_100"
    assert isinstance(zoo.get("lenet5", compile=False), Sequential)
    assert not zoo.get("lenet5", compile=False).compiled
    same = zoo.get("lenet1", seed=3).get_weights()
    for a, b in zip(same, zoo.get("lenet1", seed=3).get_weights()):
        np.testing.assert_array_equal(a, b)
    tanh = zoo.get("lenet5", activation="tanh", pooling="avg")
    assert type(tanh.layers[1]).__name__ == "AvgPool2D"
    with pytest.raises(ConfigError, match="unknown model 'lenet7'; expected one of iris"):
        zoo.get("lenet7")
    with pytest.raises(ConfigError, match="pooling must be 'max' or 'avg'.*'sum'"):
        zoo.get("lenet5", pooling="sum")
    with pytest.raises(ConfigError, match="zoo.get\\('fc300'\\).*units"):
        zoo.get("fc300", units=5)
    assert zoo.info("lenet5").lecun_test_error == 0.95


def test_lenet1_learns_the_bundled_digits():
    """Stated budget: 2 epochs of batch 64 on the 4,000-digit split -> >= 85% test accuracy
    (measured 91.2%)."""
    train, test = load_mnist_sample().split([0.8, 0.2], seed=0, stratify=True)
    model = zoo.get("lenet1", seed=0)
    with _one_blas_thread():
        model.fit(train, batch_size=64, epochs=2, seed=0, verbose=0)
        acc = model.evaluate(test)["accuracy"]
    assert acc >= 0.85


def test_iris_stalls_with_the_seed_rate_and_converges_with_half():
    """The seed's hyperparameters (lr 0.01, batch 4, 100 epochs) stall; lr 0.5 converges."""
    train, test = load_iris().split([0.8, 0.2], seed=0, stratify=True)
    accs = {}
    with _one_blas_thread():
        for lr in (0.01, 0.5):
            model = zoo.get("iris", learning_rate=lr, seed=0)
            model.fit(train, batch_size=4, epochs=100, seed=0, verbose=0)
            accs[lr] = model.evaluate(test)["accuracy"]
    assert accs[0.01] < 0.8
    assert accs[0.5] >= 0.9
