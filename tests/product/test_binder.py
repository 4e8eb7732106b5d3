"""Binder (repo2docker) files: they exist, are executable, and what postBuild installs
resolves in a fresh virtualenv. (The notebooks themselves run in tests/product/
test_notebooks.py, in the project environment that holds the same packages.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def test_binder_files():
    assert (BINDER / "runtime.txt").read_text().strip().startswith("python-3.")
    for name in ("postBuild", "start"):
        path = BINDER / name
        assert path.is_file() and os.access(path, os.X_OK), name
        assert path.read_text().startswith("#!/usr/bin/env bash")
    assert 'exec "$@"' in (BINDER / "start").read_text()


def test_postbuild_requirements_resolve_in_a_fresh_venv(tmp_path):
    line = next(ln for ln in (BINDER / "postBuild").read_text().splitlines()
                if "pip install" in ln)
    args = shlex.split(line)
    target = next(a for a in args if a.startswith("."))
    extras = re.fullmatch(r"\.\[(.*)\]", target).group(1).split(",")
    assert {"pocl", "lab"} <= set(extras)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--quiet",
         "--disable-pip-version-check", f"{ROOT}[{','.join(extras)}]"],
        capture_output=True, text=True, timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
