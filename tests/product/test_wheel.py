"""Build the wheel, install it into a fresh virtualenv and run a kernel from it.

Proves that kernels/ and widgets/ ship inside the wheel and that the resource lookup
finds them there (not in the checkout).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
         str(ROOT)], check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("mao_lab-*.whl")
    return whl


def test_wheel_contains_kernels_and_widgets(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    kernels = sorted(Path(n).name for n in names if n.startswith("mao_lab/_kernels/"))
    expected = sorted(p.name for p in (ROOT / "kernels").glob("*.cl"))
    assert kernels and kernels == expected
    widgets = {Path(n).name for n in names if n.startswith("mao_lab/_widgets/")}
    assert widgets == {p.name for p in (ROOT / "widgets").iterdir() if p.is_file()}


def test_installed_wheel_runs_a_kernel(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # dependencies come from the same registry/cache the project venv used
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["numpy", "pyopencl", "pocl-binary-distribution"], check=True)
    subprocess.run(pip + ["--no-deps", str(wheel)], check=True)
    script = textwrap.dedent("""
        import numpy as np, mao_lab
        from mao_lab._assets import asset_dir
        print(mao_lab.__file__)
        print(asset_dir("kernels"))
        be = mao_lab.get_backend("opencl")
        rng = np.random.default_rng(0)
        a = rng.standard_normal((33, 17)).astype(np.float32)
        b = rng.standard_normal((17, 9)).astype(np.float32)
        c = be.to_host(be.gemm(be.asarray(a), be.asarray(b)))
        print(float(np.abs(c - a @ b).max()))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    res = subprocess.run([str(py), "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    pkg_file, kernels_dir, err = res.stdout.strip().splitlines()[-3:]
    assert str(venv) in pkg_file and str(ROOT) not in pkg_file
    assert kernels_dir.endswith(os.path.join("mao_lab", "_kernels"))
    assert float(err) < 1e-4
