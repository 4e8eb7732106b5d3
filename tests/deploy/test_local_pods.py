"""The manifests' containers run here as local processes standing in for pods.

A controller started with the Deployment's own args (only --ip, --location and --ports moved
to loopback and free ports), two engines that get nothing but IPP_CONNECTION_INFO from the
Secret's JSON, JupyterLab with the Secret's token, and a client that trains a model through
mao_lab on those engines; then an engine is killed, restarted as the kubelet would, and
registers again.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import K8S, Pod, deploy_module, find, free_port_range, render
from ipyparallel import interactive

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
SLOW_MACHINE_TIMEOUT = 120.0  # shared 2-core CI: a busy engine is not a dead engine


def _wait(pred, timeout: float, what: str, pods=()):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if any(p.exited() for p in pods):
            break
        time.sleep(0.3)
    logs = "\n".join(f"--- {p.name}:\n{p.output()[-2000:]}" for p in pods)
    raise AssertionError(f"gave up on {what} (timeout {timeout} s or process exit)\n{logs}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    conn = deploy_module("connection")
    root = tmp_path_factory.mktemp("pods")
    docs = render(str(K8S / "overlays" / "cpu"))
    lo, hi = free_port_range(20)
    ports = f"{lo}-{hi}"
    # the Secret as `connection.py secret` makes it, for a controller reachable at 127.0.0.1
    key, token = "0123456789abcdef" * 4, "tok-" + "5" * 20
    info = conn.connection_info(key, "127.0.0.1", ports, ip="127.0.0.1")
    secret = conn.secret_manifest(info, key, token, "mao-connection", "mao")
    (lab_port, _) = free_port_range(1)
    ctl = Pod(find(docs, "Deployment", "mao-controller")[0], secret, root / "controller",
              {"--ip": "127.0.0.1", "--location": "127.0.0.1", "--ports": ports})
    engine_dep = find(docs, "Deployment", "mao-engine-cpu")[0]
    # a warm kernel cache, as a pod has after its first start (its emptyDir /home/mao keeps
    # PoCL's binaries and mao_lab's calibration across container restarts): a cold one costs
    # a minute of OpenCL compiles on a busy 2-core machine
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    warm = {"XDG_CACHE_HOME": str(cache), "POCL_CACHE_DIR": str(cache / "pocl"),
            "MAO_LAB_CACHE_DIR": str(cache / "mao_lab")}
    engines = [Pod(engine_dep, secret, root / f"engine-{i}", env_overrides=warm)
               for i in range(2)]
    lab = Pod(find(docs, "Deployment", "mao-lab")[0], secret, root / "lab",
              env_overrides={"MAO_LAB_PORT": str(lab_port)},
              # the image runs as uid 10001; a root test runner needs jupyter's consent
              extra_args=("--allow-root",) if os.geteuid() == 0 else ())
    pods = [ctl, *engines, lab]
    try:
        ctl.start()
        _wait(lambda: ctl.healthcheck("controller").returncode == 0, 60, "the controller",
              [ctl])
        for p in engines + [lab]:
            p.start()
        yield {"secret": secret, "controller": ctl, "engines": engines, "lab": lab,
               "info": info, "lab_port": lab_port, "pods": pods}
    finally:
        for p in reversed(pods):
            p.stop()


@pytest.fixture(scope="module")
def cluster(stack):
    from mao_lab.distributed import Cluster

    # what a notebook in the lab pod does: connect with the mounted client file
    cl = Cluster.connect(connection_file=stack["lab"].env["MAO_LAB_CONNECTION_FILE"], n=2,
                         timeout=90)
    yield cl
    cl.stop()


def _iris():
    from mao_lab.data import load_iris

    x, y = load_iris().numpy()
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32), y


def _model(seed: int = 1):
    from mao_lab import Sequential
    from mao_lab.layers import Dense
    from mao_lab.optimizers import SGD

    m = Sequential([Dense(16, activation="tanh"), Dense(3, activation="softmax")],
                   input_shape=(4,), seed=seed)
    m.compile(optimizer=SGD(learning_rate=0.2, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@interactive  # pickled by value: engines cannot import this test module
def _engine_steps() -> int:
    """Runs on an engine: the training steps its mao_lab worker has taken."""
    from mao_lab.distributed import worker

    return int(worker.STATE.get("step", 0))


@interactive
def _dense_on_engine(x):
    """Runs on an engine: a tanh Dense layer on the engine's default device (MAO_LAB_DEVICE)."""
    from mao_lab import Sequential
    from mao_lab.layers import Dense

    m = Sequential([Dense(3, activation="tanh")], input_shape=(4,), seed=0)
    info = getattr(m.backend, "info", None)
    return m.predict(x), m.get_weights(), info.key if info else m.backend.kind


def test_controller_writes_exactly_the_connection_files_of_the_secret(stack):
    ctl = stack["controller"]
    sec = stack["controller"].env["MAO_PROFILE_DIR"] + "/security/"
    data = stack["secret"]["stringData"]
    for name in ("ipcontroller-engine.json", "ipcontroller-client.json"):
        with open(sec + name) as f:
            assert json.load(f) == json.loads(data[name]), name
    assert ctl.args[0] == "controller" and ctl.proc.poll() is None
    hc = ctl.healthcheck("controller")
    assert hc.returncode == 0 and "accepts connections" in hc.stdout


def test_engines_register_from_ipp_connection_info_alone(stack, cluster):
    import mao_lab

    for pod in stack["engines"]:
        assert json.loads(pod.env["IPP_CONNECTION_INFO"]) == stack["info"]["engine"]
        assert not list(pod.root.rglob("ipcontroller-*.json"))  # no connection file anywhere
        assert pod.healthcheck("engine").returncode == 0
    inv = cluster.inventory(refresh=True)
    assert len(inv) == 2 and {e.version for e in inv} == {mao_lab.__version__}
    assert {e.pid for e in inv} == {p.proc.pid for p in stack["engines"]}  # exec'd, not forked
    for e in inv:  # PoCL is there, as in the image
        assert any(d["key"].startswith("opencl:") for d in e.devices), e.devices


def test_client_trains_a_model_on_the_pod_engines(stack, cluster):
    x, y = _iris()
    model = _model()
    before = model.evaluate(x, y)
    hist = model.fit(x, y, batch_size=30, epochs=4, seed=0, cluster=cluster, verbose=0,
                     engine_timeout=SLOW_MACHINE_TIMEOUT)
    assert hist.history["samples"] == [150] * 4 and all(hist.history["exactly_once"])
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    after = model.evaluate(x, y)
    assert after["accuracy"] >= 0.9 > before["accuracy"]
    steps = cluster.client[:].apply_sync(_engine_steps)
    assert all(s > 0 for s in steps), steps  # both engines computed gradients


def test_killed_engine_is_restarted_and_registers_again(stack, cluster):
    client = cluster.client
    old = set(client.ids)
    victim = stack["engines"][1]
    victim.kill()  # the container dies; the kubelet starts it again
    victim.start()
    _wait(lambda: len(set(client.ids) - old) == 1, 90, "the restarted engine", [victim])
    (new,) = set(client.ids) - old
    _wait(lambda: len(client.ids) == 2, 90, "the dead engine to be unregistered")
    assert victim.proc.pid in {e.pid for e in cluster.inventory(refresh=True)}
    # the new engine computes through mao_lab on its pool's device (MAO_LAB_DEVICE=auto)
    x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    out, (w, b), device = client[new].apply_sync(_dense_on_engine, x)
    assert device in {"numpy", "opencl:0:0"}
    np.testing.assert_allclose(out, np.tanh(x.astype(np.float64) @ w + b), atol=1e-5)


def test_lab_pod_serves_jupyter_with_the_secrets_token(stack):
    lab, port = stack["lab"], stack["lab_port"]
    _wait(lambda: lab.healthcheck("lab").returncode == 0, 120, "JupyterLab", [lab])
    url = f"http://127.0.0.1:{port}/api/contents"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 403
    token = stack["secret"]["stringData"]["lab-token"]
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["type"] == "directory"
