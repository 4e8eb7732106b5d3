"""Models and references shared by the distributed tests."""

from __future__ import annotations

import numpy as np

from mao_lab import Sequential
from mao_lab.layers import Dense


def iris_model(seed: int = 1, lr: float = 0.1, momentum: float = 0.9) -> Sequential:
    """An iris MLP without dropout or batchnorm (so one global step is deterministic)."""
    from mao_lab.optimizers import SGD

    m = Sequential([Dense(16, activation="tanh"), Dense(3, activation="softmax")],
                   input_shape=(4,), seed=seed)
    m.compile(optimizer=SGD(learning_rate=lr, momentum=momentum),
              loss="sparse_categorical_crossentropy")
    return m


def replay(model: Sequential, x: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> None:
    """Single-process reference: one step on each recorded global batch, in order."""
    for b in batches:
        _, grads = model.compute_gradients(x[b], y[b])
        model.apply_gradients(grads)


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
               for u, v in zip(a, b))
