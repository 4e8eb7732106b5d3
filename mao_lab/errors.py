"""The one exception hierarchy of mao_lab.

Every error names what was wrong, what was expected and what was received, and where it
happened (layer, engine or device). Catch ``MaoLabError`` to catch them all.
"""

from __future__ import annotations


class MaoLabError(Exception):
    """Base class of every error raised by mao_lab."""


class ConfigError(MaoLabError, ValueError):
    """A hyperparameter, argument or configuration value is invalid."""


class ShapeError(MaoLabError, ValueError):
    """Array shapes do not fit together (names both shapes)."""


class DTypeError(MaoLabError, TypeError):
    """An array has a dtype the operation does not accept."""


class DeviceError(MaoLabError, RuntimeError):
    """A device or backend is unknown, unavailable or failed."""


class DependencyError(MaoLabError, ImportError):
    """An optional dependency is missing; the message says what to install."""


class KernelBuildError(DeviceError):
    """An OpenCL program failed to build; carries the file, device and build log."""

    def __init__(self, message: str, *, file: str = "", device: str = "", log: str = ""):
        super().__init__(message)
        self.file = file
        self.device = device
        self.log = log


class ModelError(MaoLabError, RuntimeError):
    """A model is used in a state that does not allow it (e.g. fit before compile)."""


class EditError(ModelError, ValueError):
    """A live edit was refused; the model was left exactly as it was."""


class TrainingError(ModelError):
    """Training cannot continue (e.g. the loss diverged to NaN)."""


class DataError(MaoLabError, ValueError):
    """A dataset, column, label or batch is invalid."""


class SerializationError(MaoLabError, ValueError):
    """A saved model, weights file or config is corrupt or does not match."""


class ClusterError(MaoLabError, RuntimeError):
    """A cluster, engine or synchronisation failure (names the engine)."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise a DependencyError saying how to get it.

    Example:
        >>> np = require("numpy", "", "arrays")
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        hint = f"pip install 'mao_lab[{extra}]'" if extra else f"pip install {module}"
        raise DependencyError(
            f"{purpose} needs the optional package '{module}', which is not installed "
            f"({exc}). Install it with: {hint}"
        ) from exc
