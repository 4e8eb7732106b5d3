"""Boosted LeNet-4 (LeCun et al. 1998, after Drucker et al. 1993): three LeNet-4s, the
second trained on a 50/50 mix of patterns the first gets right and wrong, the third on
patterns where the first two disagree; the combined predictor adds the three outputs.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..data.dataset import Dataset
from ..errors import ConfigError, ShapeError
from .models import lenet4

log = logging.getLogger(__name__)


def second_training_set(correct: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices for the second net: as many patterns the first net got wrong as it got right.

    Args:
        correct: (N,) bool, whether the first net classified each candidate correctly.
        rng: draws which patterns of the larger group are used.

    Returns:
        Sorted int64 indices: n wrong and n right patterns, n = min(#wrong, #right).
        Empty when the first net is always (or never) right.

    Example:
        >>> second_training_set(np.array([True, False, True, True]),
        ...                     np.random.default_rng(0)).size
        2
    """
    correct = np.asarray(correct, dtype=bool)
    wrong, right = np.flatnonzero(~correct), np.flatnonzero(correct)
    n = min(wrong.size, right.size)
    picked = np.concatenate([rng.choice(wrong, n, replace=False),
                             rng.choice(right, n, replace=False)])
    return np.sort(picked).astype(np.int64)


def third_training_set(pred1: np.ndarray, pred2: np.ndarray) -> np.ndarray:
    """Indices of the patterns on which the first two nets' predicted classes disagree.

    Example:
        >>> third_training_set(np.array([1, 2, 3]), np.array([1, 0, 3])).tolist()
        [1]
    """
    pred1, pred2 = np.asarray(pred1), np.asarray(pred2)
    if pred1.shape != pred2.shape:
        raise ShapeError(f"third_training_set: predictions differ in shape: {pred1.shape} "
                         f"and {pred2.shape}")
    return np.flatnonzero(pred1 != pred2).astype(np.int64)


def shifted_copies(x: np.ndarray, copies: int, max_shift: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``copies`` translated versions of every image in x (N, C, H, W), zero filled.

    A small stand-in for the paper's affine distortions: they give the filters of the
    second and third nets more candidate patterns than the training set alone.
    """
    n = len(x)
    out = np.zeros((copies * n,) + x.shape[1:], dtype=x.dtype)
    h, w = x.shape[2:]
    for k in range(copies):
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        src = x[:, :, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        out[k * n:(k + 1) * n, :, max(0, dy):max(0, dy) + src.shape[2],
            max(0, dx):max(0, dx) + src.shape[3]] = src
    return out


class BoostedLeNet4:
    """Three LeNet-4s trained by LeCun et al.'s boosting scheme; outputs are summed.

    Args:
        seed: seeds the three nets (seed, seed + 1, seed + 2) and the pattern selection.
        distortions: how many shifted copies of the training set join the candidate pool
            that the second and third nets are filtered from (0 = the training set only).
        max_shift: largest translation (pixels) of a shifted copy.
        **lenet4_kwargs: passed to :func:`mao_lab.zoo.models.lenet4` (activation, ...).

    Example:
        >>> from mao_lab.zoo import BoostedLeNet4
        >>> BoostedLeNet4().count_params()
        153150
    """

    def __init__(self, seed: int = 0, distortions: int = 1, max_shift: int = 2,
                 **lenet4_kwargs) -> None:
        if isinstance(distortions, bool) or not isinstance(distortions, int) or distortions < 0:
            raise ConfigError(f"BoostedLeNet4: distortions must be an int >= 0. Received: "
                              f"distortions={distortions!r}")
        self.seed, self.distortions, self.max_shift = seed, distortions, max_shift
        self.members = [lenet4(seed=seed + k, name=f"lenet4_{k + 1}", **lenet4_kwargs)
                        for k in range(3)]
        self.name = "boosted_lenet4"
        self.set_sizes: list[int] = []

    def count_params(self) -> int:
        return sum(m.count_params() for m in self.members)

    def to(self, device) -> BoostedLeNet4:
        for m in self.members:
            m.to(device)
        return self

    def fit(self, x, y=None, batch_size: int = 64, epochs: int = 10, verbose: int = 0,
            max_epochs: int | None = None) -> list:
        """Train the three nets in turn; returns their Histories.

        The second and third nets see as many samples in total as the first
        (``epochs * len(x)``, so more epochs over their smaller sets), at most
        ``max_epochs`` (default ``4 * epochs``) passes.
        """
        x, y = _xy(x, y, "BoostedLeNet4.fit")
        rng = np.random.default_rng(self.seed)
        budget = epochs * len(x)
        max_epochs = max_epochs or 4 * epochs
        net1, net2, net3 = self.members
        hist = [net1.fit(x, y, batch_size=batch_size, epochs=epochs, seed=self.seed,
                         verbose=verbose)]
        if self.distortions:
            pool_x = np.concatenate([x, shifted_copies(x, self.distortions, self.max_shift,
                                                       rng)])
            pool_y = np.concatenate([y] * (self.distortions + 1))
        else:
            pool_x, pool_y = x, y
        pred1 = net1.predict(pool_x).argmax(axis=1)
        idx2 = second_training_set(pred1 == pool_y, rng)
        hist.append(self._fit_member(net2, pool_x, pool_y, idx2, budget, max_epochs,
                                     batch_size, verbose, "second"))
        pred2 = net2.predict(pool_x).argmax(axis=1)
        idx3 = third_training_set(pred1, pred2)
        hist.append(self._fit_member(net3, pool_x, pool_y, idx3, budget, max_epochs,
                                     batch_size, verbose, "third"))
        self.set_sizes = [len(x), int(idx2.size or len(pool_x)), int(idx3.size or len(pool_x))]
        return hist

    def _fit_member(self, net, px, py, idx, budget, max_epochs, batch_size, verbose, which):
        if idx.size < batch_size:
            log.warning("boosting: the %s net's filtered set has only %d patterns; training "
                        "it on the whole candidate pool instead", which, idx.size)
            idx = np.arange(len(px))
        ep = max(1, min(max_epochs, math.ceil(budget / idx.size)))
        return net.fit(px[idx], py[idx], batch_size=batch_size, epochs=ep, seed=self.seed,
                       verbose=verbose)

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Sum of the three nets' softmax outputs, (N, 10) (the paper adds the outputs)."""
        x, _ = _xy(x, None, "BoostedLeNet4.predict", need_y=False)
        return sum(m.predict(x, batch_size=batch_size) for m in self.members)

    def evaluate(self, x, y=None) -> dict[str, float]:
        """{"accuracy": combined, "accuracy_1/2/3": each net alone}."""
        x, y = _xy(x, y, "BoostedLeNet4.evaluate")
        outs = [m.predict(x) for m in self.members]
        res = {"accuracy": float(np.mean(sum(outs).argmax(axis=1) == y))}
        for k, o in enumerate(outs):
            res[f"accuracy_{k + 1}"] = float(np.mean(o.argmax(axis=1) == y))
        return res


def _xy(x, y, what: str, need_y: bool = True):
    if isinstance(x, Dataset):
        if y is not None:
            raise ConfigError(f"{what}: pass either a Dataset or (x, y), not both")
        return x.numpy()
    x = np.asarray(x, dtype=np.float32)
    if need_y:
        if y is None:
            raise ConfigError(f"{what}: y (integer class labels) is required unless x is a "
                              "Dataset")
        y = np.asarray(y)
        if y.shape != (len(x),):
            raise ShapeError(f"{what}: y must be ({len(x)},) integer labels; received shape "
                             f"{y.shape}")
    return x, y
