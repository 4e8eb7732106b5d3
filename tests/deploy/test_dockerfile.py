"""deploy/Dockerfile: hadolint passes at its strictest, and the image agrees with the manifests."""

from __future__ import annotations

import re
import subprocess

import pytest
from deploy_helpers import DEPLOY, K8S, ROOT, find, render, tool

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _hadolint(path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("hadolint"), "--no-color", "--failure-threshold", "info",
                           str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_passes():
    out = _hadolint(DOCKERFILE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_would_catch_unpinned_installs(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    out = _hadolint(bad)
    assert out.returncode != 0
    assert {"DL3006", "DL3008", "DL3015", "DL3009"} <= set(re.findall(r"DL\d{4}", out.stdout))


def test_multi_stage_slim_pinned_base_and_non_root():
    ins = _instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) >= 3 and any(" AS build" in f for f in froms)
    (base,) = [a for i, a in ins if i == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+", base)  # exact patch tag
    users = [a for i, a in ins if i == "USER"]
    assert users == ["10001:10001"]
    final = [k for k, (i, a) in enumerate(ins) if i == "FROM"][-1]
    assert ("USER", "10001:10001") in ins[final:]  # the last stage runs unprivileged


@pytest.mark.parametrize("vendor", ["pocl", "nvidia", "amd", "intel"])
def test_each_opencl_vendor_has_a_stage(vendor):
    stages = [a.split(" AS ")[-1] for i, a in _instructions() if i == "FROM"]
    assert f"vendor-{vendor}" in stages
    assert ("FROM", "vendor-${OPENCL_VENDOR} AS final") in _instructions()


def test_copied_sources_exist_and_pass_the_dockerignore():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for i, args in _instructions():
        if i != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = args.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            allowed = any(p.lstrip("!").rstrip("/*") in (src, src.rstrip("/"))
                          for p in ignore if p.startswith("!"))
            assert allowed, f"{src} is excluded by Dockerfile.dockerignore"


def test_image_matches_what_the_manifests_run():
    ins = _instructions()
    (entry,) = [a for i, a in ins if i == "ENTRYPOINT"]
    assert "/opt/mao/deploy/entrypoint.sh" in entry and "tini" in entry
    copied = " ".join(a for i, a in ins if i == "COPY")
    assert "deploy/entrypoint.sh" in copied and "deploy/healthcheck.py" in copied
    (expose,) = [a for i, a in ins if i == "EXPOSE"]
    docs = render(str(K8S / "overlays" / "mixed"))
    for dep in find(docs, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001
        (c,) = pod["containers"]
        probe = c["livenessProbe"].get("exec", {}).get("command", [])
        assert not probe or probe[0] in entry
        for p in c.get("ports", []):
            lo, hi = map(int, expose.split()[0].split("-"))
            assert lo <= p["containerPort"] <= hi or str(p["containerPort"]) in expose


def test_entrypoint_scripts_are_valid_shell_and_say_how_to_use_them():
    script = DEPLOY / "entrypoint.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert out.returncode == 2 and "usage: entrypoint.sh controller" in out.stderr
    out = subprocess.run(["bash", str(script), "engine"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "IPP_CONNECTION_INFO is empty" in out.stderr


def test_local_pod_stand_in_uses_the_images_environment():
    from deploy_helpers import IMAGE_ENV

    env_text = " ".join(a for i, a in _instructions() if i == "ENV")
    for name, value in IMAGE_ENV.items():
        assert f"{name}={value}" in env_text, name
