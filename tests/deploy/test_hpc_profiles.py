"""deploy/hpc: the ipcluster profiles for MPI, SSH and Slurm.

Each profile loads as ipcluster loads it; MPI and SSH also run for real on this machine
(mpiexec from the mpich wheel; an sshd of the test's own on a loopback port), Slurm renders
its heterogeneous batch script (there is no Slurm here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import BIN, DEPLOY, free_port_range
from ipyparallel import interactive
from traitlets.config import PyFileConfigLoader

HPC = DEPLOY / "hpc"


def _load(profile: str, env: dict[str, str], monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return PyFileConfigLoader("ipcluster_config.py", path=str(HPC / profile)).load_config()


def test_mpi_profile_settings(monkeypatch):
    monkeypatch.delenv("MAO_MPIEXEC", raising=False)
    cfg = _load("profile_mao_mpi", {"MAO_MPI_ARGS": "-f hosts -ppn 2"}, monkeypatch)
    assert cfg.Cluster.engine_launcher_class == "mpi"
    assert cfg.MPILauncher.mpi_args == ["-f", "hosts", "-ppn", "2"]
    assert cfg.MPILauncher.mpi_cmd == [str(BIN / "mpiexec")]  # the mpich wheel's
    assert cfg.IPController.ip == "127.0.0.1"  # nothing wider unless asked
    assert cfg.MPIEngineSetLauncher.environment["MAO_LAB_DEVICE"] == "auto"


def test_ssh_profile_reads_a_hosts_file_of_mixed_machines(monkeypatch):
    hosts = HPC / "profile_mao_ssh" / "hosts.example"
    cfg = _load("profile_mao_ssh", {"MAO_HOSTS_FILE": str(hosts), "MAO_SSH_ARGS": "-p 2222"},
                monkeypatch)
    engines = cfg.SSHEngineSetLauncher.engines
    assert {h: e["n"] for h, e in engines.items()} == {
        "localhost": 1, "lab-ws.example.org": 1, "me@gpu-box:2222": 2, "old-laptop": 1}
    assert engines["lab-ws.example.org"]["remote_python"] == "/opt/mao/.venv/bin/python"
    assert "remote_python" not in engines["old-laptop"]
    (arg,) = engines["lab-ws.example.org"]["engine_args"]
    assert arg.endswith("os.environ['MAO_LAB_DEVICE'] = 'opencl:amd'")
    assert cfg.SSHLauncher.ssh_args == ["-p", "2222"]
    assert cfg.IPController.ip == "0.0.0.0"  # remote hosts must reach the controller


@pytest.mark.parametrize("text, words", [
    ("localhost two\n", [":1:", "ENGINES >= 1", "'localhost two'"]),
    ("a 1\nb 0\n", [":2:"]),
    ("a 1\na 2\n", ["listed twice"]),
    ("# nothing\n", ["no hosts"]),
])
def test_ssh_hosts_file_errors_name_the_line(monkeypatch, tmp_path, text, words):
    hosts = tmp_path / "hosts"
    hosts.write_text(text)
    with pytest.raises(Exception) as err:
        _load("profile_mao_ssh", {"MAO_HOSTS_FILE": str(hosts)}, monkeypatch)
    for w in words:
        assert w in str(err.value)


def test_slurm_profile_writes_a_heterogeneous_job(monkeypatch, tmp_path):
    from ipyparallel.cluster.launcher import SlurmEngineSetLauncher

    pools = [{"partition": "cpu", "engines": 3, "device": "auto",
              "options": ["--cpus-per-task=4"]},
             {"partition": "gpu-nvidia", "engines": 2, "device": "opencl",
              "options": ["--gres=gpu:1"]},
             {"partition": "gpu-intel", "engines": 1, "device": "opencl:intel"}]
    (tmp_path / "pools.json").write_text(json.dumps(pools))
    cfg = _load("profile_mao_slurm", {"MAO_SLURM_POOLS": str(tmp_path / "pools.json"),
                                      "MAO_SLURM_ACCOUNT": "proj42",
                                      "MAO_CONTROLLER_PORTS": "10101-10120"}, monkeypatch)
    assert cfg.Cluster.engine_launcher_class == "slurm"
    assert cfg.IPController.ports == "10101-10120"
    launcher = SlurmEngineSetLauncher(config=cfg, work_dir=str(tmp_path),
                                      profile_dir=str(tmp_path), cluster_id="t")
    launcher.write_batch_script(6)
    script = (tmp_path / "slurm_engine.sbatch").read_text()
    assert subprocess.run(["bash", "-n", "-c", script]).returncode == 0
    lines = script.splitlines()
    assert lines.count("#SBATCH hetjob") == 2 and "#SBATCH --account=proj42" in lines
    assert "#SBATCH --partition=cpu --ntasks=3 --cpus-per-task=4" in lines
    assert "#SBATCH --partition=gpu-nvidia --ntasks=2 --gres=gpu:1" in lines
    assert "#SBATCH --partition=gpu-intel --ntasks=1" in lines
    (srun,) = [line for line in lines if line.startswith("srun ")]
    steps = srun[len("srun "):].split(" : ")
    assert [s.split()[0] for s in steps] == [f"--het-group={i}" for i in range(3)]
    for step, pool in zip(steps, pools):
        assert f"MAO_LAB_DEVICE={pool['device']}," in step
        assert "ipyparallel.engine" in step  # ipcluster filled in the engine command


def test_slurm_pools_file_errors(monkeypatch, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps([{"partition": "cpu", "engines": 0}]))
    with pytest.raises(Exception, match="engines' >= 1"):
        _load("profile_mao_slurm", {"MAO_SLURM_POOLS": str(tmp_path / "p.json")}, monkeypatch)


# ---------------------------------------------------------------- real local equivalents
def _ipcluster(profile_dir: Path, *args: str, env: dict | None = None, timeout: float = 120):
    """Run the ipcluster command; output goes to a file (a daemon keeps pipes open)."""
    log = profile_dir / f"ipcluster-{args[0]}.txt"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([str(BIN / "ipcluster"), *args, f"--profile-dir={profile_dir}"],
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True,
                                cwd=profile_dir)  # batch scripts land in the working dir
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # only the process group this call started
        rc = proc.wait(timeout=10)
    return subprocess.CompletedProcess(proc.args, rc, log.read_text(errors="replace"), "")


@pytest.fixture
def profile_copy(tmp_path):
    def make(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(HPC / name, dst)
        return dst
    return make


def _connect(profile_dir: Path, n: int):
    from mao_lab.distributed import Cluster

    cf = profile_dir / "security" / "ipcontroller-client.json"
    end = time.monotonic() + 60
    while not cf.exists() and time.monotonic() < end:
        time.sleep(0.3)
    return Cluster.connect(connection_file=str(cf), n=n, timeout=90)


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_mpi_profile_runs_engines_that_allreduce_and_train(profile_copy):
    pytest.importorskip("mpi4py")
    prof = profile_copy("profile_mao_mpi")
    env = {"MAO_LAB_DEVICE": "numpy", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = _ipcluster(prof, "start", "-n", "2", "--daemonize", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    cluster = None
    try:
        cluster = _connect(prof, 2)
        assert cluster.mpi  # ranks detected: the trainer will use MPI Allreduce
        inv = cluster.inventory(refresh=True)
        assert sorted(e.mpi_rank for e in inv) == [0, 1] and {e.mpi_size for e in inv} == {2}
        total = cluster.client[:].apply_sync(_allreduce_rank)
        assert total == [3, 3]  # (0 + 1) + (1 + 1) on both ranks
        from mao_lab import Sequential
        from mao_lab.data import load_iris
        from mao_lab.layers import Dense
        from mao_lab.optimizers import SGD

        x, y = load_iris().numpy()
        x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
        model = Sequential([Dense(16, activation="tanh"), Dense(3, activation="softmax")],
                           input_shape=(4,), seed=1)
        model.compile(optimizer=SGD(learning_rate=0.2, momentum=0.9),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        hist = model.fit(x, y, batch_size=30, epochs=4, seed=0, cluster=cluster, verbose=0,
                         engine_timeout=120.0)
        assert hist.history["samples"] == [150] * 4
        assert model.evaluate(x, y)["accuracy"] >= 0.9
    finally:
        if cluster is not None:
            cluster.stop()
        _ipcluster(prof, "stop", timeout=60)


@interactive  # pickled by value: engines cannot import this test module
def _allreduce_rank():
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm.allreduce(comm.rank + 1)


@pytest.fixture
def sshd(tmp_path):
    """An sshd of this test's own on a loopback port, accepting one fresh key."""
    sshd_bin, keygen = shutil.which("sshd") or "/usr/sbin/sshd", shutil.which("ssh-keygen")
    if not (os.path.exists(sshd_bin) and keygen and shutil.which("ssh")):
        pytest.skip("openssh-server/openssh-client not installed (make system-deps)")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host", "client"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    elif not os.path.isdir("/run/sshd"):
        pytest.skip("sshd needs /run/sshd, which only root can create")
    port, _ = free_port_range(1)
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n")  # scp copies the connection files over sftp
    with open(d / "sshd.log", "wb") as fh:
        proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")],
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    args = ["-p", str(port), "-i", str(d / "client"), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]
    try:
        end = time.monotonic() + 20
        while True:
            ok = subprocess.run(["ssh", *args, "localhost", "true"], capture_output=True)
            if ok.returncode == 0:
                break
            if time.monotonic() > end or proc.poll() is not None:
                pytest.fail(f"sshd did not accept the test key: {ok.stderr!r}")
            time.sleep(0.3)
        yield args
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_ssh_profile_starts_engines_over_ssh_to_localhost(profile_copy, sshd, tmp_path):
    prof = profile_copy("profile_mao_ssh")
    hosts = tmp_path / "hosts"
    # one host keeps the test short (every ssh round trip costs); the mixed hosts file is
    # covered by test_ssh_profile_reads_a_hosts_file_of_mixed_machines
    hosts.write_text(f"localhost 1 opencl {sys.executable}\n")
    env = {"MAO_HOSTS_FILE": str(hosts), "MAO_SSH_ARGS": " ".join(sshd)}
    out = _ipcluster(prof, "start", "-n", "1", "--daemonize", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    cluster = None
    try:
        cluster = _connect(prof, 1)
        # the host's DEVICE column reached the engine (without it: numpy, the default)
        assert cluster.client[:].apply_sync(_engine_device) == ["opencl:0:0"]
        x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
        for out, (w, b) in cluster.client[:].apply_sync(_dense_predict, x):
            np.testing.assert_allclose(out, np.tanh(x.astype(np.float64) @ w + b), atol=1e-5)
    finally:
        if cluster is not None:
            cluster.stop()
        _ipcluster(prof, "stop", env=env, timeout=60)


@interactive
def _engine_device():
    from mao_lab.backends import get_backend

    be = get_backend()
    info = getattr(be, "info", None)
    return info.key if info else be.kind


@interactive
def _dense_predict(x):
    from mao_lab import Sequential
    from mao_lab.layers import Dense

    m = Sequential([Dense(3, activation="tanh")], input_shape=(4,), seed=0)
    return m.predict(x), m.get_weights()


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_slurm_profile_heterogeneous_job_runs_with_local_stand_ins(profile_copy, tmp_path):
    """sbatch/srun/scancel stand-ins (tests/deploy/slurm_shims) run the job the profile writes
    on this machine: one engine per component, each on its component's device."""
    prof = profile_copy("profile_mao_slurm")
    pools = [{"partition": "cpu", "engines": 1, "device": "numpy"},
             {"partition": "gpu", "engines": 1, "device": "opencl"}]
    (tmp_path / "pools.json").write_text(json.dumps(pools))
    shims = Path(__file__).resolve().parent / "slurm_shims"
    env = {"MAO_SLURM_POOLS": str(tmp_path / "pools.json"), "MAO_CONTROLLER_IP": "127.0.0.1",
           "PATH": f"{shims}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = _ipcluster(prof, "start", "-n", "2", "--daemonize", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    cluster = None
    try:
        cluster = _connect(prof, 2)
        assert sorted(cluster.client[:].apply_sync(_engine_device)) == ["numpy", "opencl:0:0"]
        (script,) = prof.rglob("slurm_engine.sbatch")
        assert "#SBATCH hetjob" in script.read_text()
    finally:
        if cluster is not None:
            cluster.stop()
        _ipcluster(prof, "stop", env=env, timeout=60)  # scancel ends the job's processes
