"""Columnar preprocessing: scale, standardize (fitted on one split, applied to others), one-hot.

Each transform works chunk by chunk on the flat Arrow values through numpy and returns a new
Dataset whose feature column is float32; other columns are shared, not copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..errors import DataError
from ._arrow import chunk_view, replace_column

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset

PER_CHOICES = ("feature", "global", "channel")


def map_features(ds: Dataset, fn) -> Dataset:
    """Apply ``fn`` to the features chunk by chunk: ``fn(x (n, *feature_shape)) -> (n, *new)``.

    ``x`` is a read-only view in the stored dtype; the result is stored as float32 (or uint8
    when ``fn`` returns uint8) and may change the feature shape. Labels are shared.

    Example:
        >>> from mao_lab.data import Dataset
        >>> ds = Dataset.from_numpy(np.ones((4, 1, 2, 2), np.float32), [0, 1, 0, 1])
        >>> ds.map(lambda x: x.reshape(len(x), -1) * 2).feature_shape
        (4,)
    """
    lay = ds._layout
    if lay.kind != "tensor":
        # scalar columns: transform the stacked view, store back one float32 column each
        x = np.asarray(fn(ds._raw()[0].astype(np.float32)), dtype=np.float32)
        if x.shape != (len(ds), len(lay.features)):
            raise DataError(f"map on {len(lay.features)} scalar feature columns must keep the "
                            f"shape {(len(ds), len(lay.features))}; received {x.shape}")
        table = ds.table
        for i, name in enumerate(lay.features):
            table = replace_column(table, name, pa.array(np.ascontiguousarray(x[:, i])))
        return ds._derive(table)
    name = lay.features[0]
    col = ds.table.column(name)
    typ = col.type
    shape = None
    chunks = []
    for chunk in col.chunks:
        x = chunk_view(chunk, lay.feature_shape, name)
        out = np.asarray(fn(x))
        dtype = np.uint8 if out.dtype == np.uint8 else np.float32
        out = np.ascontiguousarray(out, dtype=dtype)
        if out.ndim < 2 or out.shape[0] != len(x) or (shape and out.shape[1:] != shape):
            raise DataError(f"map must return (n, *feature_shape) with the chunk's {len(x)} "
                            f"rows and one shape for every chunk; received {out.shape}")
        shape = out.shape[1:]
        size = int(np.prod(shape, dtype=np.int64))
        store = pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1)), size)
        if isinstance(typ, pa.FixedShapeTensorType):
            names = typ.dim_names if len(typ.shape) == len(shape) else None
            ext = pa.fixed_shape_tensor(store.type.value_type, list(shape), dim_names=names)
            store = pa.ExtensionArray.from_storage(ext, store)
        chunks.append(store)
    if not chunks:
        raise DataError("map needs at least one row; received an empty dataset")
    table = replace_column(ds.table, name, pa.chunked_array(chunks))
    return ds._derive(table, feature_shape=tuple(int(d) for d in shape))


def scale(ds: Dataset, factor: float | None = None, offset: float = 0.0) -> Dataset:
    """``x * factor + offset`` as float32; default factor 1/255 for uint8 data, else 1.

    Example:
        >>> from mao_lab.data import Dataset
        >>> ds = Dataset.from_numpy(np.array([[0, 255]], np.uint8), [0]).scale()
        >>> ds.numpy()[0].tolist()
        [[0.0, 1.0]]
    """
    if factor is None:
        factor = 1.0 / 255.0 if ds.dtype == np.uint8 else 1.0
    if not np.isfinite(factor) or not np.isfinite(offset):
        raise DataError(f"scale factor/offset must be finite; received {factor}, {offset}")
    f, o = np.float32(factor), np.float32(offset)
    return map_features(ds, lambda x: x.astype(np.float32) * f + o)


@dataclass(frozen=True)
class Standardizer:
    """Mean and standard deviation fitted on one dataset (the training split), applied to any.

    ``per='feature'`` keeps one statistic per feature element (shape ``feature_shape``),
    ``'channel'`` one per leading axis (images: channels), ``'global'`` one scalar. A zero
    standard deviation (a constant pixel) is replaced by 1 so the value maps to 0.
    """

    mean: np.ndarray
    std: np.ndarray
    per: str
    feature_shape: tuple[int, ...]

    @classmethod
    def fit(cls, ds: Dataset, per: str = "feature") -> Standardizer:
        """Fit in float64 on ``ds`` (pass the training split only)."""
        if per not in PER_CHOICES:
            raise DataError(f"per must be one of {PER_CHOICES}; received {per!r}")
        if len(ds) == 0:
            raise DataError("cannot fit standardization statistics on an empty dataset")
        shape = ds.feature_shape
        total = np.zeros(shape, np.float64)
        total_sq = np.zeros(shape, np.float64)
        for x, _ in ds._chunks():  # streaming sums keep memory at one chunk
            xd = x.astype(np.float64)
            total += xd.sum(axis=0)
            total_sq += np.square(xd).sum(axis=0)
        n = float(len(ds))
        if per == "global":
            count, s, sq = n * total.size, total.sum(), total_sq.sum()
        elif per == "channel":
            axes = tuple(range(1, len(shape)))
            count = n * int(np.prod(shape[1:], dtype=np.int64))
            s = total.sum(axis=axes).reshape((-1,) + (1,) * len(axes))
            sq = total_sq.sum(axis=axes).reshape(s.shape)
        else:
            count, s, sq = n, total, total_sq
        mean = s / count
        var = np.maximum(sq / count - mean * mean, 0.0)
        std = np.sqrt(var)
        std = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return cls(np.asarray(mean, np.float64), np.asarray(std, np.float64), per,
                   tuple(shape))

    def apply(self, ds: Dataset) -> Dataset:
        """Return ``(x - mean) / std`` as float32 (statistics fitted elsewhere)."""
        if tuple(ds.feature_shape) != self.feature_shape:
            raise DataError(f"standardization fitted on feature_shape {self.feature_shape}; "
                            f"received a dataset with feature_shape {ds.feature_shape}")
        mean = self.mean.astype(np.float32)
        inv = (1.0 / self.std).astype(np.float32)
        return map_features(ds, lambda x: (x.astype(np.float32) - mean) * inv)


def one_hot(ds: Dataset) -> Dataset:
    """Add a float32 fixed-size-list column ``<label>_onehot`` of width num_classes."""
    k = ds.num_classes
    if k == 0:
        raise DataError("one_hot needs num_classes >= 1; received a dataset with 0 classes")
    y = ds.labels()
    eye = np.zeros((len(y), k), np.float32)
    eye[np.arange(len(y)), y] = 1.0
    col = pa.FixedSizeListArray.from_arrays(pa.array(eye.reshape(-1)), k)
    return ds._derive(replace_column(ds.table, f"{ds.label}_onehot", col))


def one_hot_numpy(ds: Dataset) -> np.ndarray:
    """(N, num_classes) float32 one-hot labels: a view of the one-hot column when present."""
    name = f"{ds.label}_onehot"
    if name in ds.table.column_names:
        col = ds.table.column(name)
        if col.num_chunks == 1:
            return chunk_view(col.chunk(0), (ds.num_classes,), name)
        return np.concatenate([chunk_view(c, (ds.num_classes,), name) for c in col.chunks])
    y = ds.labels()
    out = np.zeros((len(y), ds.num_classes), np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out
