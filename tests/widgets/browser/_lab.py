"""Helpers of the real-browser tests: the JupyterLab server handle, a kernel client to read
the kernel's values, JavaScript error collection and opening/running a notebook.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MAO_LAB_CHROMIUM", "/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_chromium() -> None:
    if Path(CHROMIUM).is_file():
        return
    msg = (f"Chromium not found at {CHROMIUM}; install it with `bash scripts/system-deps.sh` "
           "(apt-get install chromium)")
    if IN_CI:
        pytest.fail(msg + " — CI=true, so browser tests must run, not skip", pytrace=False)
    pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    runtime_dir: Path

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}", timeout=10) as r:
            return json.loads(r.read())

    def kernel_client(self, notebook: str):
        """A BlockingKernelClient on the kernel of the session running ``notebook``."""
        from jupyter_client import BlockingKernelClient

        sessions = [s for s in self.api("/api/sessions") if s["path"].endswith(notebook)]
        assert sessions, f"no kernel session for {notebook}: {self.api('/api/sessions')}"
        kid = sessions[0]["kernel"]["id"]
        kc = BlockingKernelClient(connection_file=str(self.runtime_dir / f"kernel-{kid}.json"))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        return kc


def kernel_eval(kc, expression: str, timeout: float = 60):
    """Evaluate a Python expression in the kernel; returns the text of its repr."""
    reply = kc.execute_interactive("", user_expressions={"v": expression}, timeout=timeout,
                                   output_hook=lambda _msg: None)
    value = reply["content"]["user_expressions"]["v"]
    assert value["status"] == "ok", value
    return value["data"]["text/plain"]


def kernel_json(kc, expression: str, timeout: float = 60):
    """The kernel's value of ``expression`` (JSON-able), through json.dumps on that side."""
    text = kernel_eval(kc, f"__import__('json').dumps({expression})", timeout)
    return json.loads(ast.literal_eval(text))


class JsErrors(list):
    """Page errors and console errors collected while a page is open."""

    def attach(self, page) -> JsErrors:
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))
        page.on("console", lambda m: self.append(f"console.{m.type}: {m.text}")
                if m.type == "error" and not _benign(m.text) else None)
        return self


def _benign(text: str) -> bool:
    # Lab asks for optional resources that do not exist in a fresh profile; not widget errors.
    return any(s in text for s in ("404 (Not Found)", "Failed to load resource", "favicon",
                                   "lab/api/translations", "workspaces"))  # fmt: skip


def open_and_run(page, lab: Lab, notebook: str, timeout_ms: int = 60_000) -> None:
    """Open ``notebook`` in Lab, wait for its kernel, and run all cells (returns at once)."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}&reset")
    page.wait_for_function(
        "() => window.jupyterapp && jupyterapp.shell.currentWidget && "
        "jupyterapp.shell.currentWidget.sessionContext && "
        "jupyterapp.shell.currentWidget.sessionContext.session && "
        "jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=timeout_ms)
    page.evaluate("() => { jupyterapp.commands.execute('notebook:run-all-cells'); }")


