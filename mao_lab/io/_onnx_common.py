"""Shared helpers of ONNX export and import: padding rules and small checks."""

from __future__ import annotations

from ..errors import DependencyError


def onnx_modules():
    """(onnx, onnx.helper, onnx.numpy_helper) or a DependencyError saying what to install."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise DependencyError(
            f"ONNX export/import needs the 'onnx' package ({exc}); install it with "
            "pip install 'mao_lab[onnx]'"
        ) from exc
    return onnx, helper, numpy_helper


def pair(v) -> tuple[int, int]:
    """An int or a 2-sequence as a (h, w) tuple of ints."""
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def same_pads(size: tuple[int, int], k: tuple[int, int], s: tuple[int, int]) -> list[int]:
    """'same' padding as ONNX pads [top, left, bottom, right] (extra cell at bottom/right)."""
    pads_begin, pads_end = [], []
    for n, kk, ss in zip(size, k, s):
        out = -(-n // ss)
        total = max((out - 1) * ss + kk - n, 0)
        pads_begin.append(total // 2)
        pads_end.append(total - total // 2)
    return pads_begin + pads_end
