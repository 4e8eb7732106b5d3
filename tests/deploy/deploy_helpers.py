"""Helpers for the deployment tests: deploy/ modules, kustomize rendering, free ports, processes."""

from __future__ import annotations

import functools
import importlib.util
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
BIN = Path(sys.executable).parent


def deploy_module(name: str):
    """Import deploy/<name>.py (the image's helper scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"mao_deploy_{name}", DEPLOY / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def tool(name: str) -> str:
    """A command-line tool from this virtualenv (installed by the test extra), else PATH."""
    cand = BIN / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found next to {sys.executable} or on PATH; install the test "
                    f"extra: pip install -e '.[test]'")
    return found


@functools.cache
def render(path: str) -> tuple[dict, ...]:
    """Every object `kubectl kustomize` renders for a kustomization directory."""
    out = subprocess.run([tool("kubectl"), "kustomize", path], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"kustomize {path} failed:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def find(docs, kind: str, name: str | None = None) -> list[dict]:
    """Objects of a kind (and name) among rendered documents."""
    return [d for d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)]


def free_port_range(n: int = 20, attempts: int = 50) -> tuple[int, int]:
    """``n`` consecutive ports on 127.0.0.1 that nothing listens on right now."""
    for _ in range(attempts):
        base = random.randrange(20000, 60000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base, base + n - 1
    raise RuntimeError(f"no {n} consecutive free ports found in {attempts} attempts")
