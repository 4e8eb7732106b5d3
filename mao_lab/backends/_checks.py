"""Argument checks shared by every backend: clear errors for shapes, dtypes and names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, DTypeError, ShapeError
from .base import ACTIVATIONS

FLOAT_DTYPES = ("float32", "float64")


_DTYPE_SETS: dict[tuple, frozenset] = {}


def check_float(name: str, a, op: str, allowed: Sequence[str] = FLOAT_DTYPES) -> None:
    # dtype objects, not str(dtype): str() costs microseconds on every hot-path call
    key = tuple(allowed)
    ok = _DTYPE_SETS.get(key)
    if ok is None:
        ok = _DTYPE_SETS[key] = frozenset(np.dtype(d) for d in allowed)
    if a.dtype not in ok:
        raise DTypeError(
            f"{op}: '{name}' must have dtype {' or '.join(allowed)}; received {a.dtype}"
        )


def check_same_dtype(op: str, **arrays) -> None:
    arrays = {k: v for k, v in arrays.items() if v is not None}
    dtypes = {v.dtype for v in arrays.values()}
    if len(dtypes) > 1:
        got = ", ".join(f"{k}={v.dtype}" for k, v in arrays.items())
        raise DTypeError(f"{op}: all operands must share one float dtype; received {got}")


def check_ndim(name: str, a, ndim: int, op: str) -> None:
    if len(a.shape) != ndim:
        raise ShapeError(
            f"{op}: '{name}' must be {ndim}-D; received shape {tuple(a.shape)}"
        )


def check_shape(name: str, a, shape: tuple, op: str) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ShapeError(
            f"{op}: '{name}' must have shape {tuple(shape)}; received {tuple(a.shape)}"
        )


def check_activation(kind: str, op: str) -> None:
    if kind not in ACTIVATIONS:
        raise ConfigError(
            f"{op}: unknown activation {kind!r}; expected one of {', '.join(ACTIVATIONS)}"
        )


def gemm_dims(a, b, trans_a: bool, trans_b: bool) -> tuple[int, int, int]:
    """(M, N, K) of op(a) @ op(b), or a ShapeError naming both shapes."""
    check_ndim("a", a, 2, "gemm")
    check_ndim("b", b, 2, "gemm")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    k2, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != k2:
        raise ShapeError(
            f"gemm: inner dimensions differ: op(a) is ({m}, {k}) (trans_a={trans_a}, "
            f"a.shape={tuple(a.shape)}), op(b) is ({k2}, {n}) (trans_b={trans_b}, "
            f"b.shape={tuple(b.shape)})"
        )
    return int(m), int(n), int(k)


def conv_dims(x_shape, w_shape, stride, padding, op: str) -> tuple[int, int]:
    """(OH, OW) of a convolution, validating ranks, channels and the window size."""
    if len(x_shape) != 4:
        raise ShapeError(f"{op}: x must be (B, C, H, W); received shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ShapeError(f"{op}: w must be (F, C, KH, KW); received shape {tuple(w_shape)}")
    if x_shape[1] != w_shape[1]:
        raise ShapeError(
            f"{op}: x has {x_shape[1]} channels but w expects {w_shape[1]} "
            f"(x {tuple(x_shape)}, w {tuple(w_shape)})"
        )
    return window_dims(x_shape, w_shape[2:], stride, padding, op)


def window_dims(x_shape, window, stride, padding, op: str) -> tuple[int, int]:
    """(OH, OW) for a (KH, KW) window sliding over x's last two axes."""
    if len(x_shape) != 4:
        raise ShapeError(f"{op}: x must be (B, C, H, W); received shape {tuple(x_shape)}")
    if len(stride) != 2 or min(stride) < 1:
        raise ConfigError(f"{op}: stride must be two ints >= 1; received {tuple(stride)}")
    if len(padding) != 4 or min(padding) < 0:
        raise ConfigError(
            f"{op}: padding must be (top, bottom, left, right) ints >= 0; received "
            f"{tuple(padding)}"
        )
    kh, kw = window
    h = x_shape[2] + padding[0] + padding[1]
    w = x_shape[3] + padding[2] + padding[3]
    if kh > h or kw > w or kh < 1 or kw < 1:
        raise ShapeError(
            f"{op}: window ({kh}, {kw}) does not fit the padded input ({h}, {w}) "
            f"(input {tuple(x_shape)}, padding {tuple(padding)})"
        )
    return (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
