"""mao_lab — Many as One Lab: train neural networks on any vendor's hardware, many machines
at once, as one.

``import mao_lab`` needs only numpy; OpenCL, ipyparallel and the widgets load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

from .backends import devices, get_backend  # noqa: E402
from .errors import MaoLabError  # noqa: E402

__all__ = ["__version__", "devices", "get_backend", "MaoLabError"]

# Names resolved lazily so that importing the package stays fast and numpy-only.
_LAZY = {
    "Sequential": (".model", "Sequential"),
    "Dataset": (".data", "Dataset"),
    "Cluster": (".distributed", "Cluster"),
    "load_model": (".io", "load_model"),
}
_SUBMODULES = {
    "backends", "layers", "losses", "optimizers", "metrics", "initializers", "callbacks",
    "model", "io", "data", "zoo", "distributed", "widgets", "errors",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module, __name__), attr)
    raise AttributeError(f"module 'mao_lab' has no attribute {name!r}")
