"""Checks that turn an arbitrary pyarrow.Table into a valid Dataset layout, or say exactly why not.

Column resolution (which columns are features and label), ragged rows, dtypes, labels and the
NaN/inf policy. Every failure is a DataError naming what was expected and what was received.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from ._arrow import (
    FEATURE_DTYPES,
    check_tensor_layout,
    chunk_view,
    is_tensor_type,
    replace_column,
    scalar_chunk_view,
    storage_type,
    tensor_shape,
    tensor_value_type,
)

LABEL_GUESSES = ("label", "labels", "y", "target", "class")
NAN_POLICIES = ("raise", "drop", "fill")


@dataclass(frozen=True)
class Layout:
    """Which columns hold what. ``kind`` is 'tensor' (one tensor column) or 'scalars'."""

    features: tuple[str, ...]
    label: str
    kind: str
    feature_shape: tuple[int, ...]
    num_classes: int


def _missing(table: pa.Table, names, role: str) -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise DataError(
            f"{role} column(s) {missing} not found; the table has columns "
            f"{table.column_names}. Received: {list(names)}"
        )


def resolve_label(table: pa.Table, label: str | None, meta: dict) -> str:
    """Pick the label column: explicit, then metadata, then a conventional name."""
    if label is None and meta.get("label") in table.column_names:
        label = meta.get("label")
    if label is None:
        label = next((c for c in LABEL_GUESSES if c in table.column_names), None)
    if label is None:
        raise DataError(
            f"no label column: expected label= to name one of {table.column_names} (or a "
            f"column named one of {list(LABEL_GUESSES)}). Received: label=None"
        )
    _missing(table, [label], "label")
    return label


def resolve_features(table: pa.Table, features, label: str, meta: dict) -> tuple[str, ...]:
    """Pick the feature columns: explicit, metadata, the one tensor column, or all the rest."""
    if isinstance(features, str):
        features = [features]
    stored = meta.get("features")
    if features is None and stored and all(c in table.column_names for c in stored):
        features = stored  # a projection that dropped them falls back to inference
    if features is None:
        rest = [c for c in table.column_names if c != label and not c.endswith("_onehot")]
        tensors = [c for c in rest if is_tensor_type(table.schema.field(c).type)
                   or _is_var_list(table.schema.field(c).type)]
        features = tensors[:1] if tensors else rest
    features = list(features)
    if not features:
        raise DataError(f"no feature columns: the table has only {table.column_names}")
    _missing(table, features, "feature")
    if label in features:
        raise DataError(f"column '{label}' cannot be both a feature and the label")
    return tuple(features)


def _is_var_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ)


def fix_ragged(table: pa.Table, name: str) -> pa.Table:
    """Turn a variable-length list column into a fixed-size list, or report the ragged rows."""
    col = table.column(name)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if len(lengths) == 0:
        raise DataError(f"column '{name}' is an empty list column; cannot infer the row size")
    valid = lengths[~np.isnan(lengths.astype(float))] if lengths.dtype.kind == "f" else lengths
    size = int(np.bincount(valid.astype(np.int64)).argmax())
    bad = np.flatnonzero(lengths != size)
    if bad.size:
        raise DataError(
            f"column '{name}' is ragged: expected every row to hold {size} values (the most "
            f"common length); rows {bad[:5].tolist()} hold {lengths[bad[:5]].tolist()}"
        )
    value_type = col.type.value_type
    return replace_column(table, name, col.cast(pa.list_(value_type, size)))


def check_tensor(table: pa.Table, name: str, feature_shape) -> tuple[int, ...]:
    """Validate one tensor feature column and return the per-row shape."""
    typ = table.schema.field(name).type
    check_tensor_layout(name, typ)
    vt = tensor_value_type(typ)
    if vt not in FEATURE_DTYPES:
        raise DataError(
            f"feature column '{name}' holds {vt}; expected float32 or uint8 tensors. Cast it "
            f"first (e.g. Dataset.from_numpy(x.astype('float32'), y)). Received type: {typ}"
        )
    size = storage_type(typ).list_size
    shape = tuple(int(d) for d in feature_shape) if feature_shape is not None else None
    if shape is None:
        shape = tensor_shape(typ)
    if int(np.prod(shape, dtype=np.int64)) != size or any(d <= 0 for d in shape):
        raise DataError(
            f"feature_shape {shape} does not fit column '{name}': expected a shape whose "
            f"product is the row size {size}. Received: feature_shape={shape}"
        )
    return shape


def check_scalars(table: pa.Table, names) -> None:
    """Validate scalar feature columns: integers or floats, one value per row."""
    for n in names:
        typ = table.schema.field(n).type
        if not (pa.types.is_floating(typ) or pa.types.is_integer(typ)):
            raise DataError(
                f"feature column '{n}' has type {typ}; expected numbers (an integer or float "
                "column) or one fixed-size list / tensor column holding every feature"
            )


def check_labels(table: pa.Table, label: str, num_classes: int | None) -> tuple[pa.Table, int]:
    """Labels must be non-null integers in [0, num_classes); cast to int64 (small copy)."""
    col = table.column(label)
    if not pa.types.is_integer(col.type):
        raise DataError(
            f"label column '{label}' has type {col.type}; expected integer class indices "
            "0..num_classes-1 (cast floats or map strings to indices first)"
        )
    if col.null_count:
        rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[:5].tolist()
        raise DataError(f"label column '{label}' has {col.null_count} nulls (rows {rows})")
    if col.type != pa.int64():
        col = col.cast(pa.int64())
        table = replace_column(table, label, col)
    lo = pc.min(col).as_py() if len(col) else 0
    hi = pc.max(col).as_py() if len(col) else -1
    if num_classes is None:
        num_classes = int(hi) + 1 if len(col) else 0
    if num_classes is not None and (not isinstance(num_classes, int | np.integer)
                                    or num_classes < 0):
        raise DataError(f"num_classes must be a non-negative int; received {num_classes!r}")
    if lo is not None and (lo < 0 or hi >= num_classes):
        raise DataError(
            f"labels in '{label}' must lie in [0, {num_classes}); received values in "
            f"[{lo}, {hi}]"
        )
    return table, int(num_classes)


def apply_nan_policy(table: pa.Table, layout: Layout, policy: str, fill_value: float):
    """Find NaN/inf in float features; raise, drop those rows, or fill them (per policy)."""
    if policy not in NAN_POLICIES:
        raise DataError(f"nan_policy must be one of {NAN_POLICIES}; received {policy!r}")
    bad_rows = np.zeros(len(table), dtype=bool)
    any_bad = False
    for name in layout.features:
        typ = table.schema.field(name).type
        vt = tensor_value_type(typ) if layout.kind == "tensor" else typ
        if not pa.types.is_floating(vt):
            continue
        start = 0
        for chunk in table.column(name).chunks:
            if layout.kind == "tensor":
                v = chunk_view(chunk, layout.feature_shape, name).reshape(len(chunk), -1)
                if v.size and np.isfinite(v.min()) and np.isfinite(v.max()):
                    start += len(chunk)  # fast path: min/max propagate NaN, no temporaries
                    continue
                rows = ~np.isfinite(v).all(axis=1)
            else:
                rows = ~np.isfinite(scalar_chunk_view(chunk, name))
            if rows.any():
                any_bad = True
                bad_rows[start:start + len(chunk)] |= rows
            start += len(chunk)
    if not any_bad:
        return table
    where = np.flatnonzero(bad_rows)
    if policy == "raise":
        raise DataError(
            f"{where.size} rows hold NaN or inf features (first rows {where[:5].tolist()}); "
            "expected finite numbers. Pass nan_policy='drop' to drop those rows or "
            "nan_policy='fill' (with fill_value=...) to replace the values."
        )
    if policy == "drop":
        return table.filter(pa.array(~bad_rows))
    for name in layout.features:
        col = table.column(name)
        typ = col.type
        chunks = []
        for chunk in col.chunks:
            if layout.kind == "tensor":
                v = chunk_view(chunk, layout.feature_shape, name).copy()
                v[~np.isfinite(v)] = fill_value
                flat = pa.array(v.reshape(-1))
                store = pa.FixedSizeListArray.from_arrays(flat, storage_type(typ).list_size)
                chunks.append(pa.ExtensionArray.from_storage(typ, store)
                              if isinstance(typ, pa.BaseExtensionType) else store)
            elif pa.types.is_floating(typ):
                v = scalar_chunk_view(chunk, name).copy()
                v[~np.isfinite(v)] = fill_value
                chunks.append(pa.array(v, type=typ))
            else:
                chunks.append(chunk)
        table = replace_column(table, name, pa.chunked_array(chunks, type=typ))
    return table


def resolve(table: pa.Table, features, label, feature_shape, num_classes, meta: dict):
    """Resolve and validate the layout; returns (table possibly normalised, Layout)."""
    label = resolve_label(table, label, meta)
    feats = resolve_features(table, features, label, meta)
    for n in feats:
        if _is_var_list(table.schema.field(n).type):
            table = fix_ragged(table, n)
    tensors = [n for n in feats if is_tensor_type(table.schema.field(n).type)]
    if tensors and len(feats) > 1:
        raise DataError(
            f"expected either one tensor column or several scalar columns as features; "
            f"received {list(feats)} of which {tensors} are tensor columns"
        )
    if feature_shape is None and meta.get("features") == list(feats):
        feature_shape = meta.get("feature_shape")
    if tensors:
        kind, shape = "tensor", check_tensor(table, feats[0], feature_shape)
    else:
        check_scalars(table, feats)
        kind, shape = "scalars", (len(feats),)
        if feature_shape is not None and tuple(feature_shape) != shape:
            raise DataError(f"{len(feats)} scalar feature columns give feature_shape {shape}; "
                            f"received feature_shape={tuple(feature_shape)}")
    if num_classes is None and meta.get("label") == label:
        num_classes = meta.get("num_classes")
    table, ncls = check_labels(table, label, num_classes)
    return table, Layout(feats, label, kind, shape, ncls)
