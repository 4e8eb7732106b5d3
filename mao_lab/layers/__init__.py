"""Layers (all NCHW) and the registry that rebuilds them from their config.

Example:
    >>> from mao_lab.layers import Dense, serialize, deserialize
    >>> deserialize(serialize(Dense(3, name="d"))).get_config()["units"]
    3
"""

from __future__ import annotations

from .activation import Activation
from .base import Layer, deserialize, get_layer_class, register, serialize
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm
from .pooling import AvgPool2D, MaxPool2D
from .reshaping import Flatten, Reshape

__all__ = [
    "Activation", "AvgPool2D", "BatchNorm", "Conv2D", "Dense", "Dropout", "Flatten", "Layer",
    "MaxPool2D", "Reshape", "deserialize", "get_layer_class", "register", "serialize",
]
