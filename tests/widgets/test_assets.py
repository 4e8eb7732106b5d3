"""The widget ES modules and CSS: valid ES-module syntax (node), mao- prefixed classes,
small files, and every widget class's bundle resolvable from the package."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from mao_lab._assets import asset_dir

WIDGETS = ["ModelGraph", "EngineMonitor", "TrainingDashboard"]


def widget_class(name):
    import mao_lab.widgets as w

    return getattr(w, name)


@pytest.mark.parametrize("name", WIDGETS)
def test_bundles_are_valid_es_modules_with_a_default_export(name):
    esm = widget_class(name)._esm
    assert "export default" in esm and esm.count("export default") == 1
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the browser tests still check the modules")
    # `node --check file.js` accepts module syntax errors on Node 20: check as a module.
    proc = subprocess.run([node, "--input-type=module", "--check"], input=esm, text=True,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_css_classes_are_prefixed_and_files_are_small():
    files = sorted(asset_dir("widgets").glob("*.*"))
    assert {p.suffix for p in files} <= {".js", ".css"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 200, path.name
        if path.suffix == ".css":
            classes = set(re.findall(r"\.([a-zA-Z][\w-]*)", re.sub(r"\d+\.\d+", "", text)))
            assert classes and all(c.startswith("mao-") for c in classes), (path.name, classes)
