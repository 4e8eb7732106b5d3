# ipcluster profile: engines on a mix of machines over SSH, listed in a hosts file.
#   MAO_HOSTS_FILE=hosts ipcluster start --profile-dir=deploy/hpc/profile_mao_ssh -n 99
# hosts file lines: HOST ENGINES [DEVICE [PYTHON]]  (HOST may be user@host:port; DEVICE is
# MAO_LAB_DEVICE for those engines: auto, numpy, opencl, opencl:<platform>:<device>).
# Other settings: MAO_SSH_ARGS (extra ssh options), MAO_CONTROLLER_IP (default: 127.0.0.1
# when every host is this machine, else 0.0.0.0), MAO_CONTROLLER_LOCATION (the name engines
# use to reach the controller; default: this host's name).
import os
import shlex

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

_LOCAL = ("localhost", "127.0.0.1", "::1")


def read_hosts(path):
    """{host: {"n": engines, "engine_args": [...], "remote_python": ...}} from a hosts file."""
    engines = {}
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            fields = raw.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) < 1:
                raise ValueError(f"{path}:{lineno}: expected 'HOST ENGINES [DEVICE [PYTHON]]' "
                                 f"with ENGINES >= 1; received {raw.strip()!r}")
            if fields[0] in engines:
                raise ValueError(f"{path}:{lineno}: host {fields[0]!r} is listed twice")
            device = fields[2] if len(fields) > 2 else "auto"
            # the engine sets its device before mao_lab looks (ssh does not carry env vars)
            setup = f"import os; os.environ['MAO_LAB_DEVICE'] = {device!r}"
            cfg = {"n": int(fields[1]), "engine_args": [f"--IPEngine.startup_command={setup}"]}
            if len(fields) > 3:  # the engine command is set apart from the python it names
                cfg["remote_python"] = fields[3]
                cfg["engine_cmd"] = [fields[3], "-m", "ipyparallel.engine"]
            engines[fields[0]] = cfg
    if not engines:
        raise ValueError(f"{path}: no hosts listed")
    return engines


_hosts = os.environ.get("MAO_HOSTS_FILE") or os.path.join(os.path.dirname(__file__), "hosts")
c.Cluster.engine_launcher_class = "ssh"
c.SSHEngineSetLauncher.engines = read_hosts(_hosts)
_ssh_args = shlex.split(os.environ.get("MAO_SSH_ARGS", ""))
c.SSHLauncher.ssh_args = _ssh_args
# scp copies the connection files: same options, but scp spells the port -P
c.SSHLauncher.scp_args = ["-P" if a == "-p" else a for a in _ssh_args]
_all_local = all(h.split("@")[-1].split(":")[0] in _LOCAL
                 for h in c.SSHEngineSetLauncher.engines)
c.IPController.ip = os.environ.get("MAO_CONTROLLER_IP", "127.0.0.1" if _all_local else "0.0.0.0")
if os.environ.get("MAO_CONTROLLER_LOCATION"):
    c.IPController.location = os.environ["MAO_CONTROLLER_LOCATION"]
