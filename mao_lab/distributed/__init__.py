"""Data-parallel training on ipyparallel engines: many machines train one model as one.

``Cluster`` starts or connects to engines; ``DataParallel`` runs the SPMD training loop on
them (MPI allreduce or a parameter server through the client), with speed-proportional
shares of a fixed global batch, live metrics and survival of engine loss.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .balance import Balancer, split_counts
from .cluster import Cluster, EngineInfo, Inventory

__all__ = ["Balancer", "Cluster", "DataParallel", "EngineInfo", "Inventory", "TrainingHandle",
           "split_counts"]

_LAZY = {"DataParallel": ".trainer", "TrainingHandle": ".handle"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'mao_lab.distributed' has no attribute {name!r}")
