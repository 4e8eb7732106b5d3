"""Models for the widget tests (the real ``mao_lab.Sequential``)."""

from __future__ import annotations

from mao_lab.model import Sequential


def make_model(layers, input_shape, name=None):
    """A built Sequential over ``layers`` for ``input_shape`` (no batch dim)."""
    return Sequential(layers, input_shape=input_shape, name=name)
