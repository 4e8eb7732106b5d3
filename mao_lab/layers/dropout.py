"""Dropout: inverted dropout with counter-based masks (same on every backend for a seed)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Layer, register


@register
class Dropout(Layer):
    """Zero each input with probability ``rate`` while training; scale the rest by 1/(1-rate).

    The mask of each training step comes from ``backend.dropout_mask(seed, offset)`` with
    the offset advancing by the batch size, so runs are reproducible for a seed. With
    ``seed=None`` the seed is drawn from the model's generator at build.

    Example:
        >>> import numpy as np
        >>> d = Dropout(0.5, seed=1); d.build((4,))
        >>> d.forward(np.ones((1, 4), np.float32), training=False).tolist()
        [[1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ConfigError(f"Dropout: rate must be a number in [0, 1). Received: rate={rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"Dropout: seed must be None or an int >= 0. Received: seed={seed!r}")
        self.rate = float(rate)
        self.seed = seed
        self.step_offset = 0  # elements drawn so far; advances every training forward

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed, "name": self.name}

    def build_params(self, input_shape) -> None:
        self._seed = self.seed if self.seed is not None else int(self.rng.integers(2**31))

    def runtime_state(self) -> dict[str, Any]:
        return {"seed": self._seed, "step_offset": self.step_offset} if self.built else {}

    def set_runtime_state(self, state: dict[str, Any]) -> None:
        self._seed = int(state.get("seed", self._seed))
        self.step_offset = int(state.get("step_offset", 0))

    def forward(self, x, training: bool = False):
        if not training or self.rate == 0:
            self._c_mask = None
            return x
        n = 1
        for d in x.shape:
            n *= int(d)
        mask = self.be.dropout_mask(tuple(x.shape), self.rate, self._seed, self.step_offset)
        self.step_offset += n
        self._c_mask = mask
        return self.be.mul(x, mask)

    def backward(self, dy):
        if self._c_mask is None:
            return dy
        return self.be.mul(dy, self._c_mask)
