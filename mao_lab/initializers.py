"""Weight initializers (Keras names): glorot/he uniform+normal, zeros, ones; all seeded.

An initializer is a callable ``init(shape, fan_in, fan_out, rng) -> np.ndarray`` (float32,
host memory); layers call them through ``Layer.add_param``.

Example:
    >>> import numpy as np
    >>> w = get("glorot_uniform")((4, 3), 4, 3, np.random.default_rng(0))
    >>> w.shape, bool(abs(w).max() <= (6 / 7) ** 0.5)
    ((4, 3), True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import ConfigError

Initializer = Callable[[tuple, int, int, np.random.Generator], np.ndarray]


def zeros(shape, fan_in, fan_out, rng) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


def ones(shape, fan_in, fan_out, rng) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def glorot_uniform(shape, fan_in, fan_out, rng) -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    lim = np.sqrt(6.0 / max(1, fan_in + fan_out))
    return rng.uniform(-lim, lim, size=shape).astype(np.float32)


def glorot_normal(shape, fan_in, fan_out, rng) -> np.ndarray:
    """Truncated-free normal with std sqrt(2 / (fan_in + fan_out))."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / max(1, fan_in + fan_out))).astype(
        np.float32)


def he_uniform(shape, fan_in, fan_out, rng) -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / fan_in) (He et al. 2015)."""
    lim = np.sqrt(6.0 / max(1, fan_in))
    return rng.uniform(-lim, lim, size=shape).astype(np.float32)


def he_normal(shape, fan_in, fan_out, rng) -> np.ndarray:
    """Normal with std sqrt(2 / fan_in)."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / max(1, fan_in))).astype(np.float32)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": zeros, "ones": ones, "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal, "he_uniform": he_uniform, "he_normal": he_normal,
}


def check(name: object, where: str) -> str:
    """Validate an initializer name; raise ConfigError naming ``where`` otherwise."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ConfigError(
            f"{where} must be one of {', '.join(INITIALIZERS)}. Received: {where}={name!r}"
        )
    return name


def get(name: str) -> Initializer:
    """The initializer called ``name`` (see INITIALIZERS)."""
    return INITIALIZERS[check(name, "initializer")]
