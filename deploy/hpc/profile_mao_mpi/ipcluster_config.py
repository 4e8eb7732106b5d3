# ipcluster profile: engines started by mpiexec, so mao_lab syncs gradients with MPI Allreduce.
#   ipcluster start --profile-dir=deploy/hpc/profile_mao_mpi -n 4 --daemonize
# Settings from the environment: MAO_MPIEXEC (default: the mpiexec beside this Python, from
# the `mpich` wheel, else PATH), MAO_MPI_ARGS (e.g. "-f hosts" for MPICH, "--hostfile hosts"
# for Open MPI), MAO_CONTROLLER_IP (default 127.0.0.1; a cluster-network address for nodes).
import os
import shlex
import sys

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

_venv_mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
c.Cluster.engine_launcher_class = "mpi"
c.MPILauncher.mpi_cmd = [os.environ.get("MAO_MPIEXEC")
                         or (_venv_mpiexec if os.path.exists(_venv_mpiexec) else "mpiexec")]
c.MPILauncher.mpi_args = shlex.split(os.environ.get("MAO_MPI_ARGS", ""))
c.IPController.ip = os.environ.get("MAO_CONTROLLER_IP", "127.0.0.1")
c.MPIEngineSetLauncher.environment = {
    "POCL_AFFINITY": "1",
    "MAO_LAB_DEVICE": os.environ.get("MAO_LAB_DEVICE", "auto"),
    "PYTHONUNBUFFERED": "1",
}
