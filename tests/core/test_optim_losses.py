"""Optimizer steps and loss values against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab import get_backend
from mao_lab.errors import ConfigError, ShapeError
from mao_lab.losses import CategoricalCrossentropy, MeanSquaredError, SparseCategoricalCrossentropy
from mao_lab.losses import get as get_loss
from mao_lab.optimizers import SGD, Adam
from mao_lab.optimizers import get as get_opt

BE = get_backend("numpy")


def steps(opt, grads, p0=(1.0, -2.0)):
    p = np.array(p0, np.float32)
    opt.build(BE, [("l/w", p)])
    out = []
    for g in grads:
        opt.apply(BE, [("l/w", p, np.array(g, np.float32))])
        out.append(p.copy())
    return out


def test_sgd_plain():
    (p,) = steps(SGD(0.1), [[0.5, -1.0]])
    np.testing.assert_allclose(p, [0.95, -1.9], rtol=1e-6)


def test_sgd_momentum_and_nesterov():
    p1, p2 = steps(SGD(0.1, momentum=0.9), [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(p1, [0.9, -2.1], rtol=1e-6)  # v = 1
    np.testing.assert_allclose(p2, [0.71, -2.29], rtol=1e-6)  # v = 0.9 * 1 + 1 = 1.9
    q1, q2 = steps(SGD(0.1, momentum=0.9, nesterov=True), [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(q1, [1 - 0.19, -2 - 0.19], rtol=1e-6)  # g + m v = 1.9
    np.testing.assert_allclose(q2, [0.81 - 0.271, -2.19 - 0.271], rtol=1e-6)  # 1 + .9*1.9


def test_sgd_weight_decay():
    (p,) = steps(SGD(0.1, weight_decay=0.5), [[0.0, 0.0]])
    np.testing.assert_allclose(p, [0.95, -1.9], rtol=1e-6)  # g + 0.5 p


def test_adam_two_steps_against_formula():
    g1, g2 = np.array([0.5, -1.0]), np.array([-0.25, 2.0])
    p1, p2 = steps(Adam(0.01), [g1, g2])
    m, v, p = np.zeros(2), np.zeros(2), np.array([1.0, -2.0])
    for t, g in ((1, g1), (2, g2)):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-7)
        if t == 1:
            np.testing.assert_allclose(p1, p, rtol=1e-6)
    np.testing.assert_allclose(p2, p, rtol=1e-6)


def test_learning_rate_change_and_state_round_trip():
    opt = SGD(0.1, momentum=0.5)
    p = np.zeros(2, np.float32)
    opt.build(BE, [("l/w", p)])
    opt.apply(BE, [("l/w", p, np.ones(2, np.float32))])
    opt.learning_rate = 1.0
    opt.apply(BE, [("l/w", p, np.ones(2, np.float32))])  # v = 1.5
    np.testing.assert_allclose(p, [-1.6, -1.6], rtol=1e-6)
    state = opt.get_state()
    assert opt.state_names() == ["iterations", "l/w/velocity"]
    assert int(state[0]) == 2
    np.testing.assert_allclose(state[1], [1.5, 1.5])
    other = SGD(**opt.get_config())
    other.build(BE, [("l/w", p)])
    other.set_state(state)
    assert other.iterations == 2 and other.get_config() == opt.get_config()
    with pytest.raises(ShapeError, match=r"l/w/velocity: expected shape \(2,\); received \(3,\)"):
        other.set_state([state[0], np.zeros(3)])


@pytest.mark.parametrize("make,msg", [
    (lambda: SGD(-0.1), "learning_rate must be a number in (0.0, inf)"),
    (lambda: SGD(0.1, momentum=1.0), "momentum"),
    (lambda: SGD(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: Adam(beta_1=1.2), "beta_1"),
    (lambda: get_opt("rmsprop"), "unknown optimizer 'rmsprop'"),
    (lambda: get_loss("hinge"), "unknown loss 'hinge'"),
    (lambda: MeanSquaredError("max"), "reduction must be 'mean' or 'sum'"),
])
def test_invalid_configs(make, msg):
    with pytest.raises(ConfigError) as err:
        make()
    assert msg in str(err.value)


def test_mse_mean_and_sum():
    y = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    t = np.array([[0.0, 2.0], [1.0, 1.0]], np.float32)
    sq = (y - t) ** 2  # 1, 0, 4, 16
    for red, value, scale in (("mean", sq.mean(), 1 / 4), ("sum", sq.sum(), 1.0)):
        total, s, dy = MeanSquaredError(red)(BE, y, t)
        assert float(total) * s == pytest.approx(value)
        np.testing.assert_allclose(dy, 2 * scale * (y - t))


def test_cross_entropies_match_log_softmax():
    z = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]], np.float32)
    ids = np.array([1, 2], np.int32)
    t = np.eye(3, dtype=np.float32)[ids]
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    want = -(logp[[0, 1], ids]).mean()
    for loss, target in ((CategoricalCrossentropy(from_logits=True), t),
                         (SparseCategoricalCrossentropy(from_logits=True), ids)):
        total, s, dy = loss(BE, z, target)
        assert float(total) * s == pytest.approx(want, rel=1e-6)
        np.testing.assert_allclose(dy, (np.exp(logp) - t) / 2, rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match="needs logits"):
        CategoricalCrossentropy()(BE, z, t)
