"""Loaders and writers: numpy arrays, CSV, Parquet (files and directories), Arrow IPC/Feather.

Writers are atomic (a temporary file in the same directory, then a rename), so a failed save
leaves nothing half-written. Corrupt or truncated files raise DataError naming the path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..errors import DataError
from ._arrow import decode_binary_tensors, encode_binary_tensors, tensor_array
from .dataset import Dataset

PathLike = str | os.PathLike


def from_numpy(x, y, *, feature_shape: Sequence[int] | None = None, extension: bool = False,
               num_classes: int | None = None, class_names: Sequence[str] | None = None,
               nan_policy: str = "raise", fill_value: float = 0.0) -> Dataset:
    """Dataset from ``x`` (N, *feature_shape) and integer labels ``y`` (N,).

    float32 and uint8 features are wrapped without copying when C-contiguous; other real
    dtypes are converted to float32 (a copy). Labels must be integers (or integral floats).

    Example:
        >>> ds = from_numpy(np.zeros((3, 4), np.float32), [0, 1, 1])
        >>> ds.feature_shape, ds.num_classes
        ((4,), 2)
    """
    x = np.asarray(x)
    if x.dtype == object:
        raise DataError("x is ragged (an object array); expected every row to have the same "
                        "shape, e.g. (N, 28, 28)")
    if x.ndim < 2:
        raise DataError(f"x must have shape (N, *feature_shape) with ndim >= 2; received "
                        f"shape {x.shape}")
    if x.dtype not in (np.float32, np.uint8):
        if x.dtype.kind not in "fiub":
            raise DataError(f"x must hold real numbers; received dtype {x.dtype}")
        x = x.astype(np.float32)
    y = _labels(y, x.shape[0])
    shape = tuple(int(d) for d in (feature_shape or x.shape[1:]))
    if int(np.prod(shape, dtype=np.int64)) != int(np.prod(x.shape[1:], dtype=np.int64)):
        raise DataError(f"feature_shape {shape} does not fit rows of shape {x.shape[1:]}")
    if x.shape[0] == 0:
        raise DataError("x holds 0 rows; expected a non-empty dataset")
    table = pa.table({"x": tensor_array(x, shape, extension), "label": pa.array(y)})
    return Dataset(table, features="x", label="label", feature_shape=shape,
                   num_classes=num_classes, class_names=class_names, nan_policy=nan_policy,
                   fill_value=fill_value)


def _labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"y must be a 1-D array of {n} labels (one per row of x); received "
                        f"shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError("labels must be integer class indices; received non-integral "
                            f"floats such as {y[(y != np.round(y)) | ~np.isfinite(y)][:3]}")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"labels must be integer class indices; received dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def _wrap_read(path: PathLike, what: str, fn):
    try:
        return fn()
    except FileNotFoundError as exc:
        raise DataError(f"{what} file not found: {path}") from exc
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {what} from {path}: the file is corrupt, truncated or "
                        f"not {what} ({exc})") from exc


def read_csv(path: PathLike, label: str = "label", features: Sequence[str] | None = None,
             feature_shape: Sequence[int] | None = None, column_names: Sequence[str] | None
             = None, **kwargs: Any) -> Dataset:
    """Dataset from a CSV file (gzip allowed), reading only the columns needed.

    Args:
        path: the .csv or .csv.gz file.
        label: label column.
        features: feature columns (default: every other column); packed into one float32
            tensor column ``x`` when ``feature_shape`` is given, else kept as scalar columns.
        feature_shape: optional per-row shape for the packed features.
        column_names: names for a file without a header row.
        **kwargs: passed to Dataset (num_classes, class_names, nan_policy, fill_value).
    """
    import pyarrow.csv as pacsv  # loaded on first use: keeps import light

    read_opts = pacsv.ReadOptions(column_names=list(column_names) if column_names else None)
    header = _wrap_read(path, "CSV", lambda: pacsv.open_csv(path, read_options=read_opts))
    names = header.schema.names
    wanted = [label] + (list(features) if features is not None else
                        [c for c in names if c != label])
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(f"CSV {path} has no column(s) {missing}; it has columns {names}")
    conv = pacsv.ConvertOptions(include_columns=wanted)
    table = _wrap_read(path, "CSV", lambda: pacsv.read_csv(path, read_options=read_opts,
                                                           convert_options=conv))
    if table.num_rows == 0:
        raise DataError(f"CSV {path} holds no rows; expected a non-empty dataset")
    feats = wanted[1:]
    if feature_shape is not None:
        for f in feats:
            if not (pa.types.is_integer(table.schema.field(f).type)
                    or pa.types.is_floating(table.schema.field(f).type)):
                raise DataError(f"CSV column '{f}' has type {table.schema.field(f).type}; "
                                "expected numbers")
        x = np.column_stack([table.column(f).to_numpy().astype(np.float32) for f in feats])
        return from_numpy(x, table.column(label).to_numpy(), feature_shape=feature_shape,
                          **kwargs)
    return Dataset(table, features=feats, label=label, **kwargs)


def read_parquet(path: PathLike, columns: Sequence[str] | None = None, filter=None,
                 **kwargs: Any) -> Dataset:
    """Dataset from a Parquet file or a directory of Parquet files.

    Args:
        path: a file or a directory (read as one pyarrow dataset, hive partitions allowed).
        columns: columns to read (projection); default all.
        filter: a ``pyarrow.compute.Expression`` (``pc.field('label') < 5``) or DNF tuples
            (``[('label', '<', 5)]``); only matching rows are read.
        **kwargs: passed to Dataset (features, label, feature_shape, num_classes, ...).
    """
    source = _open_dataset(path)
    if columns is not None:
        missing = [c for c in columns if c not in source.schema.names]
        if missing:
            raise DataError(f"Parquet {path} has no column(s) {missing}; it has columns "
                            f"{source.schema.names}")
    expr = _expression(filter)
    table = _wrap_read(path, "Parquet", lambda: source.to_table(
        columns=list(columns) if columns is not None else None, filter=expr))
    table = decode_binary_tensors(table.replace_schema_metadata(source.schema.metadata))
    if table.num_rows == 0:
        raise DataError(f"Parquet {path} gave 0 rows (filter {filter!r}); expected a "
                        "non-empty dataset")
    return Dataset(table, **kwargs)


def _open_dataset(path: PathLike):
    import pyarrow.dataset as pads  # ~45 MB of libraries: load only for directory reads

    p = Path(path)
    if not p.exists():
        raise DataError(f"Parquet path not found: {path}")
    return _wrap_read(path, "Parquet", lambda: pads.dataset(
        str(p), format="parquet", partitioning="hive" if p.is_dir() else None))


def _expression(filter):
    if filter is None or isinstance(filter, pc.Expression):
        return filter
    try:
        return pq.filters_to_expression(filter)
    except (TypeError, ValueError) as exc:
        raise DataError(f"filter must be a pyarrow.compute.Expression or DNF tuples like "
                        f"[('label', '<', 5)]; received {filter!r} ({exc})") from exc


def read_ipc(path: PathLike, memory_map: bool = True, **kwargs: Any) -> Dataset:
    """Dataset from an Arrow IPC file (Feather v2) or stream; memory-mapped, so zero-copy."""
    def load():
        source = pa.memory_map(str(path)) if memory_map else pa.OSFile(str(path))
        try:
            return ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return ipc.open_stream(source).read_all()

    table = _wrap_read(path, "Arrow IPC", load)
    return Dataset(decode_binary_tensors(table), **kwargs)


def _atomic_write(path: PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; on failure remove the temp file."""
    target = Path(path)
    if not target.parent.exists():
        raise DataError(f"cannot save to {path}: directory {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def parquet_table(ds: Dataset, tensor_encoding: str = "list") -> pa.Table:
    """The table as written to Parquet: tensors as fixed-size lists (readable by any Parquet
    tool) or, with ``tensor_encoding='binary'``, as fixed-size binary (decodes ~7x faster;
    mao_lab readers turn it back into tensors without copying)."""
    if tensor_encoding not in ("list", "binary"):
        raise DataError(f"tensor_encoding must be 'list' or 'binary'; received "
                        f"{tensor_encoding!r}")
    if tensor_encoding == "binary":
        return encode_binary_tensors(ds.table, ds.features)
    return ds.table


def save_parquet(ds: Dataset, path: PathLike, compression: str = "zstd",
                 row_group_size: int | None = None, tensor_encoding: str = "list") -> None:
    """Write ``ds`` to one Parquet file atomically (metadata kept, so it loads back as is).

    Args:
        ds: the dataset.
        path: the file to write (replaced atomically).
        compression: Parquet codec ('zstd', 'snappy', 'none', ...).
        row_group_size: rows per row group (the unit of streaming and of Parquet shards).
        tensor_encoding: 'list' (portable) or 'binary' (fast to read); see parquet_table.
    """
    table = parquet_table(ds, tensor_encoding)
    _atomic_write(path, lambda tmp: pq.write_table(
        table, tmp, compression=compression, row_group_size=row_group_size,
        use_dictionary=[ds.label]))


def save_ipc(ds: Dataset, path: PathLike) -> None:
    """Write ``ds`` to an uncompressed Arrow IPC file (Feather v2) atomically."""
    def write(tmp):
        with pa.OSFile(tmp, "wb") as sink, ipc.new_file(sink, ds.table.schema) as writer:
            writer.write_table(ds.table)

    _atomic_write(path, write)


def to_ipc(ds: Dataset) -> pa.Buffer:
    """Arrow IPC stream of the dataset as one buffer (bytes-like; no pickling needed)."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, ds.table.schema) as writer:
        writer.write_table(ds.table)
    return sink.getvalue()


def from_ipc(buffer, validate: bool = True) -> Dataset:
    """Dataset from an Arrow IPC stream buffer; the arrays are views of ``buffer``.

    Args:
        buffer: bytes-like (``pa.Buffer``, ``memoryview``, ``bytes``).
        validate: scan features for NaN/inf; False skips the scan for buffers made by
            ``to_ipc`` of a validated Dataset (decoding is then O(columns), not O(bytes)).
    """
    try:
        buf = buffer if isinstance(buffer, pa.Buffer) else pa.py_buffer(buffer)
    except TypeError as exc:
        raise DataError(f"from_ipc needs a bytes-like Arrow IPC buffer; received "
                        f"{type(buffer).__name__}") from exc
    try:
        table = ipc.open_stream(buf).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot decode Arrow IPC buffer of {buf.size} bytes: corrupt or "
                        f"truncated ({exc})") from exc
    return Dataset(table, validate=validate)
