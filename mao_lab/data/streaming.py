"""Out-of-core reading: stream a Parquet file or directory by record batch, and cut it into
row-group-range shards so an engine on shared storage reads only its own part.

Memory stays near one row group plus the shuffle buffer, whatever the dataset size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from ._arrow import decode_binary_tensors, read_meta
from ._validate import resolve
from .batching import check_batch_size
from .dataset import Dataset
from .loaders import _expression
from .sharding import check_weights, proportional_sizes

PathLike = str | os.PathLike


def parquet_files(path: PathLike) -> list[str]:
    """The Parquet files under ``path`` (itself when a file), sorted for a stable order."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise DataError(f"Parquet path not found: {path}")
    files = sorted(str(f) for f in p.rglob("*.parquet") if f.is_file())
    if not files:
        raise DataError(f"no *.parquet files under {path}")
    return files


def _metadata(f: str) -> pq.FileMetaData:
    try:
        return pq.read_metadata(f)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read Parquet {f}: corrupt or truncated ({exc})") from exc


@dataclass(frozen=True)
class ParquetShard:
    """Row groups of a Parquet dataset assigned to one engine: ``((file, (rg, ...)), ...)``."""

    pieces: tuple[tuple[str, tuple[int, ...]], ...]
    num_rows: int

    def read(self, columns: Sequence[str] | None = None, **kwargs: Any) -> Dataset:
        """Load just these row groups into memory as a Dataset."""
        tables = []
        for f, groups in self.pieces:
            try:
                pf = pq.ParquetFile(f)
                tables.append(pf.read_row_groups(list(groups), columns=columns))
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataError(f"cannot read row groups {groups} of {f}: {exc}") from exc
        if not tables:
            raise DataError("this shard holds no row groups (its weight was 0)")
        meta = tables[0].schema.metadata
        table = pa.concat_tables([t.replace_schema_metadata(meta) for t in tables])
        return Dataset(decode_binary_tensors(table), **kwargs)

    def scan(self, batch_size: int, **kwargs: Any) -> Scan:
        """Stream just these row groups; see :func:`scan`."""
        return Scan(self.pieces, batch_size, **kwargs)


def parquet_shards(path: PathLike, weights: Sequence[float]) -> list[ParquetShard]:
    """Cut a Parquet dataset into contiguous row-group ranges with row counts proportional to
    ``weights`` (as close as row-group granularity allows). Every row group is in exactly one
    shard; each positive weight gets at least one row group.

    Example:
        >>> shards = parquet_shards("data/", [2.0, 1.0])  # doctest: +SKIP
        >>> ds = shards[0].read()                          # doctest: +SKIP
    """
    w = check_weights(weights)
    groups = [(f, i, _metadata(f).row_group(i).num_rows)
              for f in parquet_files(path) for i in range(_metadata(f).num_row_groups)]
    groups = [g for g in groups if g[2] > 0]
    positive = int((w > 0).sum())
    if positive > len(groups):
        raise DataError(f"{positive} shards with positive weight but {path} has only "
                        f"{len(groups)} non-empty row groups; expected at most that many "
                        "shards (write smaller row groups)")
    rows = np.array([g[2] for g in groups], np.int64)
    cum_rows = np.concatenate([[0], np.cumsum(rows)])
    targets = np.cumsum(proportional_sizes(int(rows.sum()), w, min_one=False))
    bounds = [0]
    for k in range(len(w) - 1):
        lo = bounds[-1] + (1 if w[k] > 0 else 0)
        hi = len(groups) - int((w[k + 1:] > 0).sum())
        b = int(np.argmin(np.abs(cum_rows - targets[k])))
        bounds.append(min(max(b, lo), hi))
    bounds.append(len(groups))
    shards = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        pieces: dict[str, list[int]] = {}
        for f, i, _ in groups[a:b]:
            pieces.setdefault(f, []).append(i)
        shards.append(ParquetShard(tuple((f, tuple(ix)) for f, ix in pieces.items()),
                                   int(rows[a:b].sum())))
    return shards


class Scan:
    """Iterable of (x float32, y int64) batches streamed from Parquet row groups.

    Args:
        pieces: ``((file, row_groups), ...)``.
        batch_size: rows per batch (> 0); every batch is full except possibly the last.
        columns: columns to read (default: the feature and label columns from metadata).
        shuffle_buffer: rows held for shuffling (0: read in order). Row groups are visited
            in a seeded random order and rows pass through a buffer of this many rows that
            releases a random resident row for each row read.
        seed: seed for the shuffle.
        filter: row filter (expression or DNF tuples) applied per record batch.
        drop_last: skip the final partial batch.
        read_rows: rows decoded per record batch (smaller: lower peak memory; at 2,048 rows of
            784 float32 the per-batch overhead is already negligible).
        **dataset_kwargs: features, label, feature_shape, num_classes, nan_policy, ...
    """

    def __init__(self, pieces, batch_size: int, columns: Sequence[str] | None = None,
                 shuffle_buffer: int = 0, seed: int | None = None, filter=None,
                 drop_last: bool = False, read_rows: int = 2048, **dataset_kwargs: Any):
        self._bs = check_batch_size(batch_size)
        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) \
                or shuffle_buffer < 0:
            raise DataError(f"shuffle_buffer must be an int >= 0; received {shuffle_buffer!r}")
        self._pieces = list(pieces)
        if not self._pieces:
            raise DataError("nothing to scan: no row groups selected")
        self._buffer, self._seed, self._drop_last = shuffle_buffer, seed, drop_last
        self._filter = _expression(filter)
        self._read_rows = max(int(read_rows), self._bs)
        schema = pq.read_schema(self._pieces[0][0])
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise DataError(f"Parquet {self._pieces[0][0]} has no column(s) {missing}; "
                                f"it has columns {schema.names}")
        self._raw_meta = schema.metadata
        empty = decode_binary_tensors(schema.empty_table())
        meta = read_meta(empty.schema)
        if columns is not None:
            empty = empty.select(list(columns))
        features, label = dataset_kwargs.pop("features", None), dataset_kwargs.pop("label", None)
        shape, ncls = dataset_kwargs.pop("feature_shape", None), dataset_kwargs.pop(
            "num_classes", None)
        _, lay = resolve(empty, features, label, shape, ncls, meta)
        if ncls is None and meta.get("label") != lay.label:
            # no count given or stored: the largest label from the Parquet statistics
            _, lay = resolve(empty, features, label, shape,
                             _label_max(self._pieces, lay.label) + 1, meta)
        self._layout = lay
        self._columns = None if self._filter is not None else [*lay.features, lay.label]
        self._ds_kwargs = dict(features=list(lay.features), label=lay.label,
                               feature_shape=lay.feature_shape, num_classes=lay.num_classes,
                               **dataset_kwargs)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return self._layout.feature_shape

    @property
    def num_classes(self) -> int:
        return self._layout.num_classes

    def _units(self) -> list[tuple[str, int]]:
        units = [(f, g) for f, groups in self._pieces for g in groups]
        if self._buffer:
            order = np.random.default_rng(self._seed).permutation(len(units))
            units = [units[i] for i in order]
        return units

    def _chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) per record batch: views of the decoded Arrow buffers (float32 converted)."""
        for f, g in self._units():
            try:
                pf = pq.ParquetFile(f)
                it = pf.iter_batches(batch_size=self._read_rows, row_groups=[g],
                                     columns=self._columns, use_threads=False)
                for rb in it:
                    table = pa.Table.from_batches([rb]).replace_schema_metadata(self._raw_meta)
                    table = decode_binary_tensors(table)
                    if self._filter is not None:
                        table = table.filter(self._filter)
                    if table.num_rows == 0:
                        continue
                    yield Dataset(table, **self._ds_kwargs).numpy()
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataError(f"cannot read row group {g} of {f}: corrupt or truncated "
                                f"({exc})") from exc

    def _rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Row blocks in reading order, or through the shuffle buffer.

        The buffer holds ``shuffle_buffer`` rows; each incoming block of m rows replaces m
        random buffer slots and the rows evicted from them go out (memory: buffer + 2 blocks).
        """
        if not self._buffer:
            yield from self._chunks()
            return
        rng = np.random.default_rng(None if self._seed is None else [self._seed, 1])
        cap, fill = self._buffer, 0
        buf_x = buf_y = None
        for x, y in self._chunks():
            if buf_x is None:
                buf_x = np.empty((cap, *x.shape[1:]), x.dtype)
                buf_y = np.empty(cap, y.dtype)
            if fill < cap:
                k = min(cap - fill, len(y))
                buf_x[fill:fill + k], buf_y[fill:fill + k] = x[:k], y[:k]
                fill += k
                x, y = x[k:], y[k:]
            while len(y):
                m = min(len(y), cap, 1024)  # small blocks keep the allocator's peak low
                slots = rng.choice(cap, m, replace=False)
                yield buf_x[slots], buf_y[slots]
                buf_x[slots], buf_y[slots] = x[:m], y[:m]
                x, y = x[m:], y[m:]
        perm = rng.permutation(fill)
        for i in range(0, fill, 1024):  # drain in small gathers, not one copy of the buffer
            idx = perm[i:i + 1024]
            yield buf_x[idx], buf_y[idx]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        bs = self._bs
        pend_x: list[np.ndarray] = []
        pend_y: list[np.ndarray] = []
        held = 0
        for x, y in self._rows():
            pend_x.append(x)
            pend_y.append(y)
            held += len(y)
            while held >= bs:  # views out of the first pending block when it holds the batch
                bx, by, pend_x, pend_y = _take_front(pend_x, pend_y, bs)
                held -= bs
                yield bx, by
        if held and not self._drop_last:
            yield np.concatenate(pend_x), np.concatenate(pend_y)


def _label_max(pieces, label: str) -> int:
    """Largest label over the selected row groups, from the Parquet min/max statistics."""
    hi = -1
    for f, groups in pieces:
        md = _metadata(f)
        idx = md.schema.to_arrow_schema().get_field_index(label)
        for g in groups:
            stats = md.row_group(g).column(idx).statistics
            if stats is None or not stats.has_min_max:
                raise DataError(f"{f} row group {g} has no statistics for '{label}'; pass "
                                "num_classes= to scan")
            hi = max(hi, int(stats.max))
    return hi


def _take_front(xs: list[np.ndarray], ys: list[np.ndarray], n: int):
    """First ``n`` rows of the pending chunks: a view when the first chunk holds them, else
    a copy of just those rows (the chunks' remainders stay views)."""
    parts_x, parts_y = [], []
    while n:
        k = min(n, len(ys[0]))
        parts_x.append(xs[0][:k])
        parts_y.append(ys[0][:k])
        xs[0], ys[0] = xs[0][k:], ys[0][k:]
        if len(ys[0]) == 0:
            xs, ys = xs[1:], ys[1:]
        n -= k
    if len(parts_y) == 1:
        return parts_x[0], parts_y[0], xs, ys
    return np.concatenate(parts_x), np.concatenate(parts_y), xs, ys


def scan(path: PathLike, batch_size: int, columns: Sequence[str] | None = None,
         shuffle_buffer: int = 0, seed: int | None = None, **kwargs: Any) -> Scan:
    """Stream a Parquet file or directory in batches without loading it.

    Example:
        >>> for x, y in scan("big/", batch_size=64, shuffle_buffer=8192, seed=0):  # doctest: +SKIP
        ...     pass
    """
    pieces = [(f, tuple(range(_metadata(f).num_row_groups))) for f in parquet_files(path)]
    pieces = [p for p in pieces if p[1]]
    return Scan(pieces, batch_size, columns=columns, shuffle_buffer=shuffle_buffer, seed=seed,
                **kwargs)
