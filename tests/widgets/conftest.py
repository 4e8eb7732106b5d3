"""Fast-tier fixtures: capture what a widget sends to the browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _drive import Sent  # noqa: E402


@pytest.fixture
def sent(monkeypatch):
    return lambda widget: Sent(widget, monkeypatch)
