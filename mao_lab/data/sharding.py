"""Splitting and sharding: seeded stratified splits, speed-proportional exact-cover shards.

``shard`` cuts contiguous zero-copy slices whose sizes follow the weights (largest-remainder
rounding, so sizes differ from the ideal by less than one row); ``reshard`` re-cuts between
epochs. This is how the distributed trainer gives fast engines more data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset


def check_weights(weights: Sequence[float], what: str = "shard weights") -> np.ndarray:
    """Validate weights: a non-empty 1-D sequence of finite numbers >= 0 with a positive sum."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numbers; received {weights!r}") from exc
    if w.ndim != 1 or w.size == 0:
        raise DataError(f"{what} must be a non-empty 1-D sequence; received {weights!r}")
    if not np.isfinite(w).all():
        raise DataError(f"{what} must be finite; received {w.tolist()}")
    if (w < 0).any():
        raise DataError(f"{what} must be >= 0; received {w.tolist()}")
    if w.sum() <= 0:
        raise DataError(f"{what} must not all be zero; received {w.tolist()}")
    return w


def proportional_sizes(n: int, weights: Sequence[float], min_one: bool = True) -> np.ndarray:
    """Split ``n`` into integer sizes proportional to ``weights`` that sum exactly to ``n``.

    Largest-remainder rounding (ties go to the lower index), then, with ``min_one``, every
    positive weight gets at least one row (taken from the largest part).

    Example:
        >>> proportional_sizes(10, [1, 1, 2]).tolist()
        [3, 2, 5]
    """
    w = check_weights(weights)
    positive = int((w > 0).sum())
    if min_one and positive > n:
        raise DataError(f"{positive} shards with positive weight but only {n} rows; expected "
                        f"at most {n} shards (one row each at least)")
    ideal = w / w.sum() * n
    sizes = np.floor(ideal).astype(np.int64)
    rest = n - int(sizes.sum())
    order = np.lexsort((np.arange(w.size), -(ideal - sizes)))
    sizes[order[:rest]] += 1
    if min_one:
        for i in np.flatnonzero((w > 0) & (sizes == 0)):
            donor = int(np.argmax(sizes))
            sizes[donor] -= 1
            sizes[i] += 1
    assert int(sizes.sum()) == n
    return sizes


def shard(ds: Dataset, weights: Sequence[float]) -> list[Dataset]:
    """One contiguous zero-copy slice per weight; every row lands in exactly one shard.

    A weight of 0 gives an empty shard; each positive weight gets at least one row.
    """
    if len(ds) == 0:
        raise DataError("cannot shard an empty dataset (0 rows)")
    sizes = proportional_sizes(len(ds), weights)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [ds.slice(int(s), int(s + k)) for s, k in zip(starts, sizes)]


def reshard(shards: Sequence[Dataset], weights: Sequence[float]) -> list[Dataset]:
    """Re-cut existing shards to new weights (concatenation is zero-copy; order kept)."""
    if not shards:
        raise DataError("reshard needs at least one shard; received none")
    return shard(type(shards[0]).concat(shards), weights)


def reshard_dataset(ds: Dataset, weights: Sequence[float], seed: int | None = None,
                    epoch: int = 0) -> list[Dataset]:
    """Shards of ``ds`` for one epoch: ``shard(weights)`` after an optional seeded permutation.

    With ``seed`` the rows are permuted by ``(seed, epoch)`` first (one gather copy), so every
    engine sees different rows each epoch; the cover stays exact.
    """
    if seed is None:
        return shard(ds, weights)
    rng = np.random.default_rng([int(seed), int(epoch)])
    return shard(ds.take(rng.permutation(len(ds))), weights)


def _fractions(fractions) -> np.ndarray:
    if isinstance(fractions, float | int) and not isinstance(fractions, bool):
        fractions = [float(fractions), 1.0 - float(fractions)]
    f = check_weights(fractions, "split fractions")
    if (f <= 0).any() or not math.isclose(f.sum(), 1.0, abs_tol=1e-6):
        raise DataError(f"split fractions must be > 0 and sum to 1; received {f.tolist()} "
                        f"(sum {f.sum():.6g})")
    return f


def split(ds: Dataset, fractions, seed: int | None = 0, stratify: bool = True) -> list[Dataset]:
    """Seeded random split into parts of the given fractions.

    Args:
        ds: the dataset.
        fractions: e.g. ``[0.8, 0.2]`` (must sum to 1), or one float ``f`` for ``[f, 1-f]``.
        seed: seed of the permutation (same seed, same split).
        stratify: split every class separately in the same proportions, so each part keeps
            the class balance (essential for data stored sorted by label, like the MNIST
            sample). Rows inside each part are shuffled.

    Returns:
        One Dataset per fraction (gathered rows: a copy).
    """
    f = _fractions(fractions)
    n = len(ds)
    if n == 0:
        raise DataError("cannot split an empty dataset (0 rows)")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in f]
    if stratify:
        y = ds.labels()
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            sizes = proportional_sizes(idx.size, f, min_one=False)
            for p, chunk in enumerate(np.split(idx, np.cumsum(sizes)[:-1])):
                parts[p].append(chunk)
    else:
        idx = rng.permutation(n)
        sizes = proportional_sizes(n, f, min_one=False)
        for p, chunk in enumerate(np.split(idx, np.cumsum(sizes)[:-1])):
            parts[p].append(chunk)
    out = []
    for p, chunks in enumerate(parts):
        idx = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
        if idx.size == 0:
            raise DataError(f"split part {p} (fraction {f[p]:.4g}) would be empty with {n} "
                            "rows; expected every part to get at least one row")
        out.append(ds.take(rng.permutation(idx)))
    return out
