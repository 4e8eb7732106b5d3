#!/usr/bin/env python3
"""Liveness checks for the three roles: exit 0 when healthy, 1 with a reason on stderr.

Standard library only; Kubernetes runs it as an exec probe (``entrypoint.sh healthcheck ROLE``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def _connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _target(info: dict) -> tuple[str, int]:
    """Where an engine reaches the controller: the interface, or its location if wildcard."""
    host = info["interface"].split("://", 1)[1]
    if host in ("0.0.0.0", "*"):
        host = info.get("location") or "127.0.0.1"
    return host, int(info["registration"])


def check_controller(profile_dir: Path, timeout: float) -> str:
    """The controller wrote its engine file and accepts connections on registration."""
    path = profile_dir / "security" / "ipcontroller-engine.json"
    if not path.is_file():
        raise RuntimeError(f"controller: {path} does not exist yet (controller not started)")
    info = json.loads(path.read_text())
    host = info["interface"].split("://", 1)[1]
    host = "127.0.0.1" if host in ("0.0.0.0", "*") else host
    _connect(host, int(info["registration"]), timeout)
    return f"controller registration port {info['registration']} accepts connections"


def check_engine(timeout: float) -> str:
    """The engine's controller (from IPP_CONNECTION_INFO) is reachable."""
    raw = os.environ.get("IPP_CONNECTION_INFO", "")
    if not raw:
        raise RuntimeError("engine: IPP_CONNECTION_INFO is empty")
    host, port = _target(json.loads(raw))
    _connect(host, port, timeout)
    return f"controller {host}:{port} reachable"


def check_lab(port: int, timeout: float) -> str:
    """The Jupyter server answers its unauthenticated ``/api`` (version) endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=timeout) as r:
        version = json.loads(r.read())["version"]
    return f"jupyter server {version} answers on port {port}"


def main(argv: Sequence[str] | None = None) -> int:
    """``healthcheck.py controller|engine|lab``."""
    args = list(sys.argv[1:] if argv is None else argv)
    timeout = float(os.environ.get("MAO_HEALTHCHECK_TIMEOUT", "3"))
    profile = Path(os.environ.get("MAO_PROFILE_DIR")
                   or Path(os.environ.get("HOME", "/tmp")) / ".ipython" / "profile_mao")
    checks = {
        "controller": lambda: check_controller(profile, timeout),
        "engine": lambda: check_engine(timeout),
        "lab": lambda: check_lab(int(os.environ.get("MAO_LAB_PORT", "8888")), timeout),
    }
    if len(args) != 1 or args[0] not in checks:
        print(f"healthcheck.py: expected one role of {sorted(checks)}; received {args}",
              file=sys.stderr)
        return 2
    try:
        print(checks[args[0]]())
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        print(f"healthcheck {args[0]}: unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
