"""Batch iteration over a Dataset: numpy views where the layout allows, copies where not.

Owns ``Batches`` (what ``Dataset.batches`` returns) and the batch-size check shared with
streaming.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as an int, or a DataError unless it is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
            or batch_size <= 0:
        raise DataError(f"batch_size must be a positive int; received {batch_size!r}")
    return int(batch_size)


class Batches:
    """An iterable of (x, y) numpy batches with a length (the number of batches).

    Without shuffling each batch is a zero-copy view into the Arrow buffers when the rows lie
    in one chunk and the stored dtype is float32; a batch crossing a chunk boundary, a shuffled
    batch (a gather) and a uint8 batch (converted to float32) are fresh arrays.
    """

    def __init__(self, ds: Dataset, batch_size: int, shuffle: bool, seed: int | None,
                 drop_last: bool):
        self._ds, self._bs, self._shuffle = ds, batch_size, shuffle
        self._seed, self._drop_last = seed, drop_last

    def __len__(self) -> int:
        n, bs = len(self._ds), self._bs
        return n // bs if self._drop_last else -(-n // bs)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ds, bs, n = self._ds, self._bs, len(self._ds)
        stop = len(self) * bs
        if self._shuffle:
            x, y = ds._raw()
            order = np.random.default_rng(self._seed).permutation(n)
            for start in range(0, stop, bs):
                idx = order[start:start + bs]
                yield ds._finish(x[idx], y[idx])
            return
        views = ds._chunks()
        if len(views) == 1:  # the common case: plain slices of one chunk
            xv, yv = views[0]
            for start in range(0, stop, bs):
                yield ds._finish(xv[start:start + bs], yv[start:start + bs])
            return
        bounds = np.cumsum([0] + [len(v[1]) for v in views])
        for start in range(0, stop, bs):
            end = min(start + bs, n)
            first = int(np.searchsorted(bounds, start, side="right")) - 1
            last = int(np.searchsorted(bounds, end, side="left")) - 1
            if first == last:
                off = bounds[first]
                xv, yv = views[first]
                yield ds._finish(xv[start - off:end - off], yv[start - off:end - off])
            else:
                parts = [(v[0][max(start - bounds[i], 0):end - bounds[i]],
                          v[1][max(start - bounds[i], 0):end - bounds[i]])
                         for i, v in enumerate(views[first:last + 1], start=first)]
                yield ds._finish(np.concatenate([p[0] for p in parts]),
                                 np.concatenate([p[1] for p in parts]))
