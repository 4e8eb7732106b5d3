"""Checks and conversions of the x / y a user hands to fit, evaluate and predict."""

from __future__ import annotations

import numpy as np

from .errors import DataError, ShapeError


def split_dataset(x, y, what: str):
    """A mao_lab.data.Dataset (anything with .numpy() and .batches()) -> (x, y) arrays."""
    if hasattr(x, "numpy") and hasattr(x, "batches"):
        if y is not None:
            raise DataError(f"{what}: x is a Dataset, which carries its labels; pass y=None")
        return x.numpy()
    return x, y


def _first_bad(a: np.ndarray) -> int:
    bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return int(np.argmax(bad))


def as_x(x, input_shape, what: str) -> np.ndarray:
    """Contiguous float32 (N, *input_shape), finite; clear errors otherwise."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise DataError(f"{what}: x must be numeric; received dtype {a.dtype}")
    expected = (None,) + tuple(input_shape)
    if a.ndim != len(expected) or tuple(a.shape[1:]) != tuple(input_shape):
        raise ShapeError(f"{what}: the model expects x of shape {expected}; received "
                         f"{tuple(a.shape)} (rank {a.ndim}, expected rank {len(expected)})")
    if a.shape[0] == 0:
        raise DataError(f"{what}: x has no samples (shape {tuple(a.shape)})")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{what}: x contains NaN or inf (first at sample {_first_bad(a)}); "
                        "clean or impute the data first")
    return a


def as_targets(y, n: int, loss, output_shape, what: str) -> np.ndarray:
    """Targets in the form ``loss`` wants: int32 ids (sparse CE), float32 like the output
    (MSE, CE). MSE with integer class ids and a K>1 output one-hot encodes them."""
    t = np.asarray(y)
    if t.ndim == 0 or len(t) != n:
        raise DataError(f"{what}: x has {n} samples but y has "
                        f"{t.shape[0] if t.ndim else 'no batch axis'} (shape {t.shape})")
    if t.dtype.kind not in "fiub":
        raise DataError(f"{what}: y must be numeric; received dtype {t.dtype}")
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise DataError(f"{what}: y contains NaN or inf (first at sample {_first_bad(t)})")
    out = tuple(output_shape)
    k = out[0] if len(out) == 1 else None
    ids = t.reshape(n) if t.ndim == 2 and t.shape[1] == 1 and k != 1 else t
    integral = ids.ndim == 1 and (ids.dtype.kind in "iub" or bool(np.all(ids == np.round(ids))))
    if loss is not None and loss.sparse:
        if not integral:
            raise DataError(f"{what}: {loss.name} expects integer class ids of shape (N,); "
                            f"received shape {t.shape}, dtype {t.dtype} (for one-hot targets "
                            "use categorical_crossentropy)")
        ids = ids.astype(np.int64)
        _check_ids(ids, k, what)
        return ids.astype(np.int32)
    if t.shape[1:] == out:
        return np.ascontiguousarray(t, dtype=np.float32)
    if t.ndim == 1 and out == (1,):
        return np.ascontiguousarray(t.reshape(n, 1), dtype=np.float32)
    if integral and k is not None and loss is not None and not loss.softmax_ce:
        ids = ids.astype(np.int64)
        _check_ids(ids, k, what)
        return np.eye(k, dtype=np.float32)[ids]
    hint = " (integer labels need loss='sparse_categorical_crossentropy')" \
        if integral and loss is not None and loss.softmax_ce else ""
    raise ShapeError(f"{what}: the model outputs {(None,) + out} but y has shape "
                     f"{tuple(t.shape)}{hint}")


def _check_ids(ids: np.ndarray, k, what: str) -> None:
    if k is not None and len(ids) and (ids.min() < 0 or ids.max() >= k):
        raise DataError(f"{what}: class ids must be in [0, {k}) for a {k}-way output; "
                        f"received values in [{ids.min()}, {ids.max()}]")
