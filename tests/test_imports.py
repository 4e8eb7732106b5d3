"""The dependency direction of STYLE.md, and a numpy-only ``import mao_lab``.

errors/config/_assets <- backends <- layers <- losses/optimizers/metrics <- model <- io
<- distributed <- widgets <- cli, with ``data`` a leaf (numpy + pyarrow only).
Module-level imports of mao_lab modules may only point down (or sideways) this list;
heavy third-party packages are imported only inside the subpackage that owns them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mao_lab"

RANK = {
    "errors": 0, "config": 0, "_assets": 0, "__init__": 9,
    "backends": 1, "layers": 2,
    "losses": 3, "optimizers": 3, "metrics": 3, "initializers": 3, "callbacks": 3,
    "model": 4, "zoo": 5, "io": 5, "distributed": 6, "widgets": 7,
    "cli": 8, "bench": 8, "_demo": 8, "_train": 8,
    "data": 0.5,
}

# third-party package -> the mao_lab subpackages allowed to import it (anywhere, even lazily)
OWNERS = {
    "pyopencl": ("backends",),
    "ipyparallel": ("distributed",),
    "mpi4py": ("distributed",),
    "anywidget": ("widgets",),
    "ipywidgets": ("widgets",),
    "onnx": ("io",),
    "onnxruntime": ("io",),
}

DATA_ALLOWED = {"numpy", "pyarrow", "mao_lab.errors"}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        yield path, rel.parts


def _area(parts) -> str:
    return parts[0] if parts else "__init__"


def _imports(path: Path, parts, top_level_only: bool):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    pkg_parts = ["mao_lab", *parts[:-1]] if parts[-1] != "__init__" else ["mao_lab", *parts[:-1]]
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    for alias in node.names:
                        yield mod + "." + alias.name, node.lineno
                    continue
            else:
                mod = node.module or ""
            yield mod, node.lineno
        elif isinstance(node, ast.If | ast.Try) and top_level_only:
            # imports guarded by `try:` / `if TYPE_CHECKING:` at module level still count
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom) and sub is not node:
                    yield from _imports_of(sub, pkg_parts)


def _imports_of(node, pkg_parts):
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, node.lineno
    else:
        if node.level:
            base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
            yield ".".join(base + ([node.module] if node.module else [])), node.lineno
        else:
            yield node.module or "", node.lineno


def test_mao_lab_imports_point_down():
    bad = []
    for path, parts in _modules():
        area = _area(parts)
        if area == "__init__" or area not in RANK:
            continue
        for mod, line in _imports(path, parts, top_level_only=True):
            if not mod.startswith("mao_lab.") or mod == "mao_lab":
                continue
            target = mod.split(".")[1]
            if target == area or target not in RANK:
                continue
            if RANK[target] > RANK[area]:
                bad.append(f"mao_lab/{'/'.join(parts)}.py:{line} ({area}) imports {mod}")
    assert not bad, "imports against the dependency direction:\n" + "\n".join(bad)


def test_heavy_packages_stay_in_their_subpackage():
    bad = []
    for path, parts in _modules():
        area = _area(parts)
        for mod, line in _imports(path, parts, top_level_only=False):
            root = mod.split(".")[0]
            if root in OWNERS and area not in OWNERS[root]:
                bad.append(f"mao_lab/{'/'.join(parts)}.py:{line} imports {root}")
    assert not bad, "heavy imports outside their owner:\n" + "\n".join(bad)


def test_data_is_a_leaf():
    bad = []
    for path, parts in _modules():
        if _area(parts) != "data":
            continue
        for mod, line in _imports(path, parts, top_level_only=False):
            root = mod.split(".")[0]
            if root == "mao_lab":
                if not (mod.startswith("mao_lab.data") or mod in DATA_ALLOWED):
                    bad.append(f"mao_lab/{'/'.join(parts)}.py:{line} imports {mod}")
            elif root not in sys.stdlib_module_names and root not in {"numpy", "pyarrow"}:
                bad.append(f"mao_lab/{'/'.join(parts)}.py:{line} imports {mod}")
    assert not bad, "mao_lab.data must use only numpy, pyarrow and mao_lab.errors:\n" + "\n".join(
        bad)


@pytest.mark.parametrize("module", ["mao_lab", "mao_lab.backends"])
def test_import_is_numpy_only(module):
    code = (
        f"import sys; import {module}; "
        "heavy = [m for m in ('pyopencl', 'pyarrow', 'ipyparallel', 'anywidget', "
        "'ipywidgets', 'networkx', 'mpi4py', 'onnx', 'safetensors', 'tqdm') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"import {module} pulled in: {out.stdout.strip()}"
