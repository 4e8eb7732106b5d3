"""Helpers for the deployment tests: deploy/ modules, kustomize rendering, free ports, processes."""

from __future__ import annotations

import functools
import importlib.util
import os
import random
import shutil
import signal
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


# ---------------------------------------------------------------- pods as local processes
IMAGE_ENV = {  # the runtime stage's ENV in deploy/Dockerfile (checked by test_dockerfile)
    "HOME": "/home/mao",
    "MAO_PROFILE_DIR": "/home/mao/.ipython/profile_mao",
    "MAO_CONNECTION_DIR": "/etc/mao/connection",
    "PYTHONUNBUFFERED": "1",
}


def _remap(value: str, mounts: dict[str, Path]) -> str:
    """A container path rewritten to the local directory standing in for its volume."""
    for mount in sorted(mounts, key=len, reverse=True):
        if value == mount or value.startswith(mount + "/"):
            return str(mounts[mount]) + value[len(mount):]
    return value


class Pod:
    """One container of a rendered Deployment, run as a local process (a pod stand-in).

    The command is the image's entrypoint with the manifest's args (``overrides`` replace
    ``--flag=value`` arguments, ``env_overrides`` env values, ``extra_args`` are appended);
    the environment is the image's ENV plus the manifest's env, with ``secretKeyRef`` read
    from ``secret`` (a Secret manifest) and resource references set to 1; each volume mount
    becomes a directory under ``root`` (Secret volumes get the projected items, as the
    kubelet writes them), and container paths in env values and args point there.
    """

    def __init__(self, deployment: dict, secret: dict, root: Path,
                 overrides: dict[str, str] | None = None,
                 env_overrides: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        spec = deployment["spec"]["template"]["spec"]
        (self.container,) = spec["containers"]
        self.name = deployment["metadata"]["name"]
        self.root = root
        data = secret["stringData"]
        mounts: dict[str, Path] = {}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for m in self.container.get("volumeMounts", []):
            local = root / m["name"]
            local.mkdir(parents=True, exist_ok=True)
            vol = volumes[m["name"]]
            if "secret" in vol:
                assert vol["secret"]["secretName"] == secret["metadata"]["name"]
                for item in vol["secret"].get("items") or [{"key": k, "path": k} for k in data]:
                    (local / item["path"]).write_text(data[item["key"]])
            mounts[m["mountPath"]] = local
        args = []
        for a in self.container.get("args", []):
            flag, eq, value = a.partition("=")
            if overrides and flag in overrides:
                value = overrides[flag]
            args.append(f"{flag}{eq}{_remap(value, mounts)}" if eq else a)
        self.args = args + list(extra_args)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("IPP_", "MAO_", "JUPYTER"))}
        env.update({k: _remap(v, mounts) for k, v in IMAGE_ENV.items()})
        for e in self.container.get("env", []):
            if "value" in e:
                env[e["name"]] = _remap(e["value"], mounts)
            elif "secretKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"]
                env[e["name"]] = data[ref["key"]]
            else:  # resourceFieldRef: one core here
                env[e["name"]] = "1"
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["MAO_PYTHON"] = sys.executable
        env.update(env_overrides or {})
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = root / "log.txt"

    def start(self) -> Pod:
        """Start (or restart, as the kubelet does) the container process."""
        self.stop()
        fh = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["bash", str(DEPLOY / "entrypoint.sh"), *self.args], env=self.env,
            cwd=self.env["HOME"], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        fh.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process group this pod started (its own processes only)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)

    def stop(self) -> None:
        """SIGTERM then SIGKILL, like a pod's termination grace period."""
        self.kill(signal.SIGTERM)

    def exited(self) -> bool:
        """True once the process has ended (a crashed container)."""
        return self.proc is not None and self.proc.poll() is not None

    def output(self) -> str:
        """Everything the process printed."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def healthcheck(self, role: str) -> subprocess.CompletedProcess:
        """Run the liveness probe's command inside this pod's environment."""
        return subprocess.run(["bash", str(DEPLOY / "entrypoint.sh"), "healthcheck", role],
                              env=self.env, capture_output=True, text=True, timeout=30)
