"""Initializers: the documented bounds / standard deviations, seeding, and bad names."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.errors import ConfigError
from mao_lab.initializers import INITIALIZERS, get


@pytest.mark.parametrize("name,fan_in,fan_out,std", [
    ("glorot_uniform", 200, 300, np.sqrt(2 / 500)),  # U(-l, l): std = l / sqrt(3)
    ("glorot_normal", 200, 300, np.sqrt(2 / 500)),
    ("he_uniform", 200, 300, np.sqrt(2 / 200)),
    ("he_normal", 200, 300, np.sqrt(2 / 200)),
])
def test_standard_deviations(name, fan_in, fan_out, std):
    w = get(name)((fan_in, fan_out), fan_in, fan_out, np.random.default_rng(0))
    assert w.dtype == np.float32 and w.shape == (fan_in, fan_out)
    assert w.std() == pytest.approx(std, rel=0.02)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= std * np.sqrt(3) + 1e-7


def test_constants_and_seeding():
    rng = np.random.default_rng
    assert not get("zeros")((2, 3), 2, 3, rng(0)).any()
    assert (get("ones")((4,), 1, 1, rng(0)) == 1).all()
    for name in INITIALIZERS:
        a = get(name)((5, 7), 5, 7, rng(42))
        np.testing.assert_array_equal(a, get(name)((5, 7), 5, 7, rng(42)))


def test_unknown_name():
    with pytest.raises(ConfigError, match="initializer must be one of zeros, ones"):
        get("orthogonal")
