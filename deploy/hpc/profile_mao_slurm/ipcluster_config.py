# ipcluster profile: the controller on the login node, engines as ONE heterogeneous Slurm job
# with a component per partition (CPU nodes, NVIDIA, AMD, Intel GPU nodes...):
#   MAO_SLURM_POOLS=pools.json ipcluster start --profile-dir=deploy/hpc/profile_mao_slurm
# pools.json: [{"partition": "cpu", "engines": 4, "device": "auto",
#               "options": ["--cpus-per-task=8"]}, ...]  (default: POOLS below).
# Other settings: MAO_SLURM_ACCOUNT, MAO_SLURM_TIME (default 02:00:00), MAO_CONTROLLER_IP
# (default 0.0.0.0: compute nodes must reach the login node), MAO_CONTROLLER_PORTS (a fixed
# range such as 10101-10120 when a firewall sits between them).
import json
import os
import re

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

POOLS = [
    {"partition": "cpu", "engines": 4, "device": "auto", "options": ["--cpus-per-task=8"]},
    {"partition": "gpu-nvidia", "engines": 2, "device": "opencl", "options": ["--gres=gpu:1"]},
    {"partition": "gpu-amd", "engines": 1, "device": "opencl", "options": ["--gres=gpu:1"]},
]


def load_pools(path):
    """The pools of a JSON file, checked (a clear error beats a rejected Slurm job)."""
    with open(path) as f:
        pools = json.load(f)
    if not isinstance(pools, list) or not pools:
        raise ValueError(f"{path}: expected a non-empty JSON list of pools")
    for i, p in enumerate(pools):
        missing = {"partition", "engines"} - set(p)
        if missing or not isinstance(p["engines"], int) or p["engines"] < 1:
            raise ValueError(f"{path}: pool {i} needs 'partition' and 'engines' >= 1; "
                             f"received {p!r}")
        if not re.fullmatch(r"[\w.-]+", str(p["partition"])):
            raise ValueError(f"{path}: pool {i}: bad partition name {p['partition']!r}")
    return pools


def batch_template(pools, time_limit, account=""):
    """A heterogeneous sbatch script: one component per pool, one srun step across them."""
    lines = ["#!/bin/bash", "#SBATCH --job-name=ipengine-mao", f"#SBATCH --time={time_limit}",
             "#SBATCH --output=ipengine-mao-%j.out"]
    if account:
        lines.append(f"#SBATCH --account={account}")
    steps = []
    for i, p in enumerate(pools):
        if i:
            lines.append("#SBATCH hetjob")
        opts = " ".join(p.get("options", []))
        lines.append(f"#SBATCH --partition={p['partition']} --ntasks={p['engines']} {opts}"
                     .rstrip())
        device = p.get("device", "auto")
        steps.append(f"--het-group={i} --export=ALL,MAO_LAB_DEVICE={device},POCL_AFFINITY=1 "
                     "{program_and_args}")
    lines.append("srun " + " : ".join(steps))
    return "\n".join(lines) + "\n"


_pools_file = os.environ.get("MAO_SLURM_POOLS")
c.Cluster.controller_launcher_class = "local"
c.Cluster.engine_launcher_class = "slurm"
c.SlurmEngineSetLauncher.batch_template = batch_template(
    load_pools(_pools_file) if _pools_file else POOLS,
    os.environ.get("MAO_SLURM_TIME", "02:00:00"), os.environ.get("MAO_SLURM_ACCOUNT", ""))
c.IPController.ip = os.environ.get("MAO_CONTROLLER_IP", "0.0.0.0")
if os.environ.get("MAO_CONTROLLER_PORTS"):
    c.IPController.ports = os.environ["MAO_CONTROLLER_PORTS"]
