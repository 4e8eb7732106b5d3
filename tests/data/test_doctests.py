"""The runnable examples in the data layer's docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["mao_lab.data", "mao_lab.data.dataset", "mao_lab.data.loaders",
           "mao_lab.data.sharding", "mao_lab.data.transforms", "mao_lab.data.bundled"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
