"""The workbench widgets (anywidget): ModelGraph, EngineMonitor, TrainingDashboard, Workbench.

Example:
    >>> from mao_lab.widgets import Workbench
    >>> wb = Workbench(model)  # display(wb) in JupyterLab
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["DashboardCallback", "EngineMonitor", "ModelGraph", "TrainingDashboard", "Workbench"]

_WHERE = {
    "ModelGraph": ".graph", "EngineMonitor": ".monitor", "TrainingDashboard": ".dashboard",
    "DashboardCallback": ".dashboard", "Workbench": ".workbench",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from ..errors import require

        require("anywidget", "lab", "The mao_lab widgets")
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module 'mao_lab.widgets' has no attribute {name!r}")
