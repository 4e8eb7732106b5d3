"""Locate the shipped resources (kernels/*.cl, widgets/*.js) in a checkout or a wheel.

In a checkout they live at the top of the repository; in an installed wheel hatch puts
them inside the package as ``mao_lab/_kernels`` and ``mao_lab/_widgets``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@cache
def asset_dir(kind: str) -> Path:
    """Return the directory holding ``kind`` assets ("kernels" or "widgets").

    Example:
        >>> (asset_dir("kernels") / "gemm.cl").exists()
        True
    """
    if kind not in ("kernels", "widgets"):
        raise ValueError(f"unknown asset kind {kind!r}; expected 'kernels' or 'widgets'")
    for candidate in (_PKG / f"_{kind}", _PKG.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"mao_lab's {kind}/ directory was not found next to the package ({_PKG}); "
        "the installation is incomplete: reinstall mao_lab"
    )


def asset_path(kind: str, name: str) -> Path:
    """Path of one asset file, with a clear error when it is missing."""
    path = asset_dir(kind) / name
    if not path.is_file():
        available = sorted(p.name for p in asset_dir(kind).iterdir())
        raise FileNotFoundError(f"no {kind} file {name!r}; available: {available}")
    return path


def read_asset(kind: str, name: str) -> str:
    """Text of one asset file."""
    return asset_path(kind, name).read_text(encoding="utf-8")
