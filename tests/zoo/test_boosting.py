"""Boosted LeNet-4: the pattern filters on tiny hand-checked cases and the combined predictor."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.errors import ConfigError, ShapeError
from mao_lab.zoo import BoostedLeNet4, second_training_set, third_training_set
from mao_lab.zoo.boosting import shifted_copies


def test_second_set_is_half_right_half_wrong():
    correct = np.array([True, True, False, True, True, False, True, True])
    idx = second_training_set(correct, np.random.default_rng(0))
    # both wrong patterns (2 and 5) and two of the six right ones
    assert idx.size == 4
    assert {2, 5} <= set(idx.tolist())
    assert correct[idx].sum() == 2
    assert np.all(np.diff(idx) > 0)
    # deterministic for a seed
    np.testing.assert_array_equal(idx, second_training_set(correct, np.random.default_rng(0)))


def test_second_set_when_the_first_net_is_mostly_wrong_and_never_wrong():
    correct = np.array([False, False, False, True])
    idx = second_training_set(correct, np.random.default_rng(1))
    assert idx.size == 2 and 3 in idx and correct[idx].sum() == 1
    assert second_training_set(np.ones(5, bool), np.random.default_rng(0)).size == 0


def test_third_set_is_where_the_two_nets_disagree():
    p1 = np.array([0, 1, 2, 3, 4, 5])
    p2 = np.array([0, 7, 2, 9, 4, 1])
    assert third_training_set(p1, p2).tolist() == [1, 3, 5]
    with pytest.raises(ShapeError, match="differ in shape"):
        third_training_set(p1, p2[:3])


def test_shifted_copies_translate_with_zero_fill():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) + 1

    class Fixed:  # a generator that always draws a (dy, dx) = (1, -1) shift
        def integers(self, lo, hi, size):
            return np.array([1, -1])

    y = shifted_copies(x, 1, 1, Fixed())[0, 0]
    expected = np.zeros((4, 4), np.float32)
    expected[1:, :3] = x[0, 0, :3, 1:]
    np.testing.assert_array_equal(y, expected)


def test_boosted_fit_and_combined_predictor_on_a_tiny_set():
    rng = np.random.default_rng(0)
    x = rng.random((96, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    model = BoostedLeNet4(seed=0, distortions=1)
    hist = model.fit(x, y, batch_size=32, epochs=1, max_epochs=1)
    assert len(hist) == 3 and model.set_sizes[0] == 96
    outs = [m.predict(x[:5]) for m in model.members]
    np.testing.assert_allclose(model.predict(x[:5]), outs[0] + outs[1] + outs[2], rtol=1e-6)
    res = model.evaluate(x, y)
    assert set(res) == {"accuracy", "accuracy_1", "accuracy_2", "accuracy_3"}
    combined = (outs[0] + outs[1] + outs[2]).argmax(1)
    assert 0 <= res["accuracy"] <= 1 and combined.shape == (5,)
    with pytest.raises(ConfigError, match="distortions must be an int >= 0"):
        BoostedLeNet4(distortions=-1)
    with pytest.raises(ShapeError, match="y must be \\(96,\\)"):
        model.evaluate(x, y[:10])
