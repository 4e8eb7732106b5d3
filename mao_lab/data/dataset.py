"""The Dataset: a pyarrow.Table of tensor features and integer labels, read as numpy views.

Owns construction/validation, numpy access, batching and the thin methods that delegate to
transforms, sharding and loaders. Rows are never copied unless a method's docstring says so.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import DataError
from . import sharding, transforms
from ._arrow import (
    chunk_view,
    nbytes_human,
    read_meta,
    scalar_chunk_view,
    tensor_value_type,
    with_meta,
)
from ._validate import Layout, apply_nan_policy, resolve
from .batching import Batches, check_batch_size


class Dataset:
    """Tensor features and integer labels in a ``pyarrow.Table``.

    Args:
        table: the data. Features are one tensor column (fixed-size list or fixed-shape tensor
            extension type, float32 or uint8) or several numeric scalar columns.
        features: feature column name(s); default: from the table's ``mao_lab`` metadata,
            else the one tensor column, else every column but the label.
        label: label column (integers in ``[0, num_classes)``); default: metadata, else a
            column called label/labels/y/target/class.
        feature_shape: per-row shape (e.g. ``(1, 28, 28)``); default: from the type/metadata.
        num_classes: default: metadata, else ``max(label) + 1``.
        class_names: optional names of the classes.
        nan_policy: 'raise' (default) on NaN/inf features, 'drop' those rows, or 'fill' them.
        fill_value: the value used by ``nan_policy='fill'``.
        validate: scan the features for NaN/inf (skip only for data already checked, e.g.
            a shard decoded from another Dataset's IPC buffer).

    Example:
        >>> import numpy as np
        >>> ds = Dataset.from_numpy(np.zeros((6, 2, 2), np.float32), np.arange(6) % 3)
        >>> len(ds), ds.feature_shape, ds.num_classes
        (6, (2, 2), 3)
    """

    def __init__(self, table: pa.Table, features: str | Sequence[str] | None = None,
                 label: str | None = None, feature_shape: Sequence[int] | None = None,
                 num_classes: int | None = None, class_names: Sequence[str] | None = None,
                 nan_policy: str = "raise", fill_value: float = 0.0, validate: bool = True):
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            raise DataError(f"Dataset needs a pyarrow.Table; received {type(table).__name__}. "
                            "Use Dataset.from_numpy(x, y) for numpy arrays.")
        meta = read_meta(table.schema)
        table, layout = resolve(table, features, label, feature_shape, num_classes, meta)
        if validate:
            table = apply_nan_policy(table, layout, nan_policy, fill_value)
        names = list(class_names) if class_names is not None else meta.get("class_names")
        if names is not None and len(names) != layout.num_classes:
            raise DataError(f"class_names has {len(names)} entries; expected num_classes="
                            f"{layout.num_classes}. Received: {names}")
        self._set(table, layout, names)

    def _set(self, table: pa.Table, layout: Layout, class_names) -> None:
        meta = {"features": list(layout.features), "label": layout.label,
                "feature_shape": list(layout.feature_shape),
                "num_classes": layout.num_classes}
        if class_names is not None:
            meta["class_names"] = [str(c) for c in class_names]
        self._table = with_meta(table, meta)
        self._layout = layout
        self._class_names = None if class_names is None else [str(c) for c in class_names]
        self._cache: dict[str, Any] = {}

    def _derive(self, table: pa.Table, **changes) -> Dataset:
        """A Dataset over ``table`` with this layout (rows already validated; no checks)."""
        layout = Layout(**{**self._layout.__dict__, **changes})
        out = object.__new__(type(self))
        out._set(table, layout, self._class_names)
        return out

    # ----------------------------------------------------------------- description
    @property
    def table(self) -> pa.Table:
        """The underlying pyarrow.Table (with ``mao_lab`` schema metadata)."""
        return self._table

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema."""
        return self._table.schema

    @property
    def features(self) -> tuple[str, ...]:
        """Names of the feature columns."""
        return self._layout.features

    @property
    def label(self) -> str:
        """Name of the label column."""
        return self._layout.label

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Per-row feature shape, e.g. ``(1, 28, 28)``."""
        return self._layout.feature_shape

    @property
    def num_classes(self) -> int:
        """Number of classes (labels lie in ``[0, num_classes)``)."""
        return self._layout.num_classes

    @property
    def class_names(self) -> list[str] | None:
        """Class names, when known."""
        return self._class_names

    @property
    def dtype(self) -> np.dtype:
        """Stored feature dtype (float32 or uint8 for tensor columns)."""
        f = self._table.schema.field(self.features[0]).type
        if self._layout.kind == "tensor":
            return np.dtype(tensor_value_type(f).to_pandas_dtype())
        return np.dtype(np.float32)

    def __len__(self) -> int:
        return self._table.num_rows

    def class_counts(self) -> np.ndarray:
        """Rows per class, shape (num_classes,) int64."""
        return np.bincount(self._raw()[1], minlength=self.num_classes).astype(np.int64)

    def __repr__(self) -> str:
        feats = self.features[0] if len(self.features) == 1 else list(self.features)
        return (f"Dataset(rows={len(self)}, features={feats!r} {self.dtype} "
                f"{self.feature_shape}, label={self.label!r} ({self.num_classes} classes), "
                f"chunks={self._table.column(self.label).num_chunks}, "
                f"{nbytes_human(self._table.nbytes)})")

    def _repr_html_(self) -> str:
        e = html.escape
        counts = self.class_counts() if len(self) else np.zeros(self.num_classes, np.int64)
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        rows = "".join(f"<tr><td>{e(n)}</td><td>{c}</td></tr>" for n, c in zip(names, counts))
        return (
            "<div class='mao-dataset'><b>Dataset</b> "
            f"{len(self)} rows &middot; {e(nbytes_human(self._table.nbytes))}<br>"
            f"features <code>{e(', '.join(self.features))}</code> {self.dtype} "
            f"{self.feature_shape} &middot; label <code>{e(self.label)}</code><br>"
            "<table><tr><th>class</th><th>rows</th></tr>" + rows + "</table></div>"
        )

    # ----------------------------------------------------------------- numpy access
    def _chunks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Aligned (x, y) numpy views per record batch of the table, stored dtype."""
        if "chunks" not in self._cache:
            lay = self._layout
            sub = self._table.select([*lay.features, lay.label])
            out = []
            for rb in sub.to_batches():
                if rb.num_rows == 0:
                    continue
                y = rb.column(lay.label).to_numpy(zero_copy_only=True)
                if lay.kind == "tensor":
                    x = chunk_view(rb.column(0), lay.feature_shape, lay.features[0])
                else:  # scalar columns are stacked: a copy
                    x = np.column_stack([scalar_chunk_view(rb.column(i), n)
                                         for i, n in enumerate(lay.features)])
                    x = x.astype(np.float32, copy=False)
                out.append((x, y))
            self._cache["chunks"] = out
        return self._cache["chunks"]

    def _raw(self) -> tuple[np.ndarray, np.ndarray]:
        """Whole-dataset (x, y) in stored dtype: views for one chunk, else one concatenation."""
        if "raw" not in self._cache:
            views = self._chunks()
            if len(views) == 1:
                self._cache["raw"] = views[0]
            elif not views:
                self._cache["raw"] = (np.zeros((0, *self.feature_shape), self.dtype),
                                      np.zeros(0, np.int64))
            else:
                self._cache["raw"] = (np.concatenate([v[0] for v in views]),
                                      np.concatenate([v[1] for v in views]))
        return self._cache["raw"]

    def _finish(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        return x, y

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """All rows as ``(x float32 (N, *feature_shape), y int64 (N,))``.

        Zero-copy views of the Arrow buffers when the table has one chunk and float32
        features; otherwise one concatenation / conversion (cached for the raw part).

        Example:
            >>> x, y = Dataset.from_numpy(np.ones((4, 3), np.float32), [0, 1, 0, 1]).numpy()
            >>> x.shape, y.dtype
            ((4, 3), dtype('int64'))
        """
        return self._finish(*self._raw())

    def labels(self) -> np.ndarray:
        """The labels, int64 (N,) (a view for a one-chunk table; features untouched)."""
        return self._raw()[1]

    def one_hot_labels(self) -> np.ndarray:
        """Labels one-hot encoded, float32 (N, num_classes) (a view of the one-hot column
        when ``one_hot()`` added it, else computed)."""
        return transforms.one_hot_numpy(self)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int | None = None,
                drop_last: bool = False) -> Batches:
        """Iterate ``(x, y)`` numpy batches.

        Args:
            batch_size: rows per batch (> 0); the last batch may be smaller.
            shuffle: visit rows in a seeded random order (each batch is then a gather copy).
            seed: seed of the order when shuffling.
            drop_last: skip the final partial batch.

        Example:
            >>> ds = Dataset.from_numpy(np.zeros((10, 2), np.float32), np.arange(10) % 2)
            >>> [len(y) for _, y in ds.batches(4)]
            [4, 4, 2]
        """
        bs = check_batch_size(batch_size)
        if len(self) == 0:
            raise DataError("cannot batch an empty dataset (0 rows); expected at least one row")
        return Batches(self, bs, bool(shuffle), seed, bool(drop_last))

    # ----------------------------------------------------------------- row selection
    def take(self, indices) -> Dataset:
        """Rows at ``indices`` (a gather: copies those rows)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise DataError(f"row indices must lie in [0, {len(self)}); received "
                            f"[{idx.min()}, {idx.max()}]")
        return self._derive(self._table.take(pa.array(idx % max(len(self), 1))))

    def slice(self, start: int, stop: int | None = None) -> Dataset:
        """Rows ``start:stop`` (zero-copy)."""
        start, stop, _ = slice(start, stop).indices(len(self))
        return self._derive(self._table.slice(start, max(stop - start, 0)))

    def __getitem__(self, item) -> Dataset:
        if isinstance(item, slice) and item.step in (None, 1):
            return self.slice(item.start or 0, item.stop)
        if isinstance(item, slice):
            return self.take(np.arange(len(self))[item])
        return self.take(item)

    @classmethod
    def concat(cls, datasets: Sequence[Dataset]) -> Dataset:
        """Rows of several datasets with one layout, in order (zero-copy: chunks are kept)."""
        datasets = list(datasets)
        if not datasets:
            raise DataError("concat needs at least one dataset; received none")
        first = datasets[0]
        for d in datasets[1:]:
            if (d.features, d.label, d.feature_shape) != (first.features, first.label,
                                                         first.feature_shape):
                raise DataError(f"concat needs one layout; received {first!r} and {d!r}")
        try:
            table = pa.concat_tables([d.table.replace_schema_metadata(first.schema.metadata)
                                      for d in datasets])
        except pa.ArrowInvalid as exc:
            raise DataError(f"concat: the tables' schemas differ ({exc})") from exc
        return first._derive(table, num_classes=max(d.num_classes for d in datasets))

    def shuffle(self, seed: int | None = None) -> Dataset:
        """Rows in a seeded random order (one gather copy)."""
        return self.take(np.random.default_rng(seed).permutation(len(self)))

    def split(self, fractions, seed: int | None = 0, stratify: bool = True) -> list[Dataset]:
        """Seeded (stratified) random split; see :func:`mao_lab.data.sharding.split`."""
        return sharding.split(self, fractions, seed=seed, stratify=stratify)

    def shard(self, weights: Sequence[float]) -> list[Dataset]:
        """Contiguous zero-copy shards sized in proportion to ``weights`` (exact cover)."""
        return sharding.shard(self, weights)

    def reshard(self, weights: Sequence[float], seed: int | None = None,
                epoch: int = 0) -> list[Dataset]:
        """Shards for a new epoch; see :func:`mao_lab.data.sharding.reshard_dataset`."""
        return sharding.reshard_dataset(self, weights, seed=seed, epoch=epoch)

    # ----------------------------------------------------------------- transforms
    def scale(self, factor: float | None = None, offset: float = 0.0) -> Dataset:
        """``x * factor + offset`` as float32 (default factor: 1/255 for uint8, else 1)."""
        return transforms.scale(self, factor, offset)

    def fit_standardize(self, per: str = "feature") -> transforms.Standardizer:
        """Mean/std fitted on this dataset (use the training split only)."""
        return transforms.Standardizer.fit(self, per=per)

    def standardize(self, stats: transforms.Standardizer) -> Dataset:
        """``(x - mean) / std`` with statistics from :meth:`fit_standardize`."""
        return stats.apply(self)

    def map(self, fn) -> Dataset:
        """Columnar ``fn(x_chunk) -> new x_chunk``; see :func:`.transforms.map_features`."""
        return transforms.map_features(self, fn)

    def one_hot(self) -> Dataset:
        """Add a float32 ``<label>_onehot`` column (num_classes wide)."""
        return transforms.one_hot(self)

    # ----------------------------------------------------------------- loaders/writers
    @classmethod
    def from_numpy(cls, x, y, **kwargs) -> Dataset:
        """From arrays; see :func:`mao_lab.data.loaders.from_numpy`."""
        from .loaders import from_numpy

        return from_numpy(x, y, **kwargs)

    @classmethod
    def from_ipc(cls, buffer, validate: bool = True) -> Dataset:
        """Decode an Arrow IPC stream zero-copy (the arrays view ``buffer``)."""
        from .loaders import from_ipc

        return from_ipc(buffer, validate=validate)

    def to_ipc(self) -> pa.Buffer:
        """Encode as an Arrow IPC stream buffer (bytes-like, sent without pickling)."""
        from .loaders import to_ipc

        return to_ipc(self)

    def to_parquet(self, path, **kwargs) -> None:
        """Write a Parquet file atomically; see :func:`mao_lab.data.loaders.save_parquet`."""
        from .loaders import save_parquet

        save_parquet(self, path, **kwargs)

    def to_feather(self, path) -> None:
        """Write an Arrow IPC (Feather v2) file atomically."""
        from .loaders import save_ipc

        save_ipc(self, path)

    @classmethod
    def scan(cls, path, batch_size: int, **kwargs):
        """Stream a Parquet file or directory; see :func:`mao_lab.data.streaming.scan`."""
        from .streaming import scan

        return scan(path, batch_size, **kwargs)
