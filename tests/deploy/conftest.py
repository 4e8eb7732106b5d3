"""Fixtures for the deployment tests; helpers live in deploy_helpers (a unique module name)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_helpers import deploy_module  # noqa: E402


@pytest.fixture(scope="session")
def connection():
    """deploy/connection.py as a module."""
    return deploy_module("connection")


@pytest.fixture(scope="session")
def healthcheck():
    """deploy/healthcheck.py as a module."""
    return deploy_module("healthcheck")
