"""Metrics computed from host-side predicted class ids: accuracy (the loss is always logged).

Example:
    >>> import numpy as np
    >>> m = Accuracy(); m.update(np.array([1, 0, 2]), np.array([1, 1, 2])); round(m.result(), 3)
    0.667
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


class Accuracy:
    """Fraction of samples whose predicted class equals the label."""

    name = "accuracy"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.count = 0

    def update(self, predicted: np.ndarray, labels: np.ndarray) -> None:
        self.correct += int(np.count_nonzero(predicted == labels))
        self.count += int(labels.shape[0])

    def result(self) -> float:
        return self.correct / self.count if self.count else 0.0


METRICS = {"accuracy": Accuracy, "acc": Accuracy}


def get(names) -> list[Accuracy]:
    """Metric objects for a list of names (None or [] means none)."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out = []
    for n in names:
        if n not in METRICS:
            raise ConfigError(f"unknown metric {n!r}; expected one of {', '.join(METRICS)} "
                              "(the loss is always reported)")
        out.append(METRICS[n]())
    return out


def class_ids(values: np.ndarray) -> np.ndarray:
    """Class ids of targets or outputs on the host: (B,) ints as is, (B, K>1) argmax,
    (B, 1) or (B,) floats thresholded at 0.5."""
    v = np.asarray(values)
    if v.ndim == 1 and v.dtype.kind in "iu":
        return v
    if v.ndim == 2 and v.shape[1] > 1:
        return v.argmax(axis=1)
    return (v.reshape(v.shape[0], -1)[:, 0] > 0.5).astype(np.int64)
