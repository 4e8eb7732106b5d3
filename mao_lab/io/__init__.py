"""Model I/O: safetensors + JSON save/load (never pickle) and ONNX export/import.

Example:
    >>> from mao_lab.io import load_model, save_model  # model.save(path) is the short form
"""

from __future__ import annotations

from .saving import load_model, load_weights, save_model, save_weights

__all__ = ["export_onnx", "import_onnx", "load_model", "load_weights", "save_model",
           "save_weights"]


def export_onnx(model, path, **kwargs):
    """Write ``model`` as an ONNX graph (needs the 'onnx' extra); see .onnx_export."""
    from .onnx_export import export_onnx as _export

    return _export(model, path, **kwargs)


def import_onnx(path, **kwargs):
    """Build a Sequential model from an ONNX file (needs the 'onnx' extra); see .onnx_import."""
    from .onnx_import import import_onnx as _import

    return _import(path, **kwargs)
