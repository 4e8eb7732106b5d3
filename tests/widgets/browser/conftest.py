"""Real-browser fixtures: Debian Chromium through Playwright, one JupyterLab server per
session (started here, always terminated), screenshots into test-artifacts/ (or into
docs/img with MAO_LAB_UPDATE_DOCS_IMG=1).

Locally the tests skip when Chromium is missing; with CI=true a missing browser fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import CHROMIUM, HERE, IN_CI, Lab, _free_port, require_chromium  # noqa: E402

try:  # pytest-playwright provides the `browser` fixture (pip install 'mao_lab[test]')
    import pytest_playwright  # noqa: F401
except ImportError:
    if IN_CI:
        raise
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    require_chromium()
    return {
        **browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"],
    }  # fmt: skip


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory):
    require_chromium()
    base = tmp_path_factory.mktemp("lab")
    root, settings = base / "root", base / "settings"
    dirs = {n: base / n for n in ("config", "runtime", "ipython", "workspaces")}
    for d in [root, settings, *dirs.values()]:
        d.mkdir(parents=True, exist_ok=True)
    for nb in HERE.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    notif = settings / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), os.urandom(16).hex()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]),
           "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
           "PYTHONUNBUFFERED": "1", "MAO_LAB_BROWSER_TEST": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.workspaces_dir={dirs['workspaces']}",
           f"--LabApp.user_settings_dir={settings}", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.news_url="]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(base / "lab.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, dirs["runtime"])
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                lab.api("/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" +
                                       (base / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def img_dir() -> Path:
    """Screenshots go to test-artifacts/screenshots (git-ignored); with
    MAO_LAB_UPDATE_DOCS_IMG=1 they refresh the committed ones in docs/img instead."""
    root = HERE.parents[2]
    if os.environ.get("MAO_LAB_UPDATE_DOCS_IMG") == "1":
        out = root / "docs" / "img"
    else:
        out = root / "test-artifacts" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (the failure screenshot fixture reads it)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
