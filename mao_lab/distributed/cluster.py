"""Start or connect to an ipyparallel cluster, and take the engine inventory.

``Cluster`` wraps ``ipyparallel.Cluster`` / ``ipyparallel.Client``: a context manager whose
stop is idempotent, with per-engine host, pid, mao_lab version and devices checked on connect.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Any

from ..errors import ClusterError, ConfigError, require
from .inventory import _PROBE, EngineInfo, Inventory

log = logging.getLogger(__name__)


def _version() -> str:
    from .. import __version__

    return __version__


class Cluster:
    """A set of ipyparallel engines that train one model together.

    Start a local cluster (``Cluster.local``) or connect to a running one
    (``Cluster.connect``). Use it as a context manager; ``stop()`` is idempotent and only
    stops what this object started.

    Example:
        >>> from mao_lab.distributed import Cluster
        >>> with Cluster.local(n=2) as cluster:          # doctest: +SKIP
        ...     print(cluster.inventory())
    """

    def __init__(self, client: Any, ipp_cluster: Any = None, *, owns: bool = False,
                 mpi: bool | None = False, check: bool = True):
        self.client = client
        self.ipp_cluster = ipp_cluster
        self.mpi = bool(mpi)
        self._owns = owns
        self._stopped = False
        self._inventory: Inventory | None = None
        if not self.ids:
            self.stop()
            raise ClusterError("the cluster has no engines: expected at least 1, received 0. "
                               "Start engines (ipcluster start -n 2) or use Cluster.local(n=2).")
        if check or mpi is None:
            try:
                inv = self.inventory(refresh=True, check=check)
            except BaseException:
                self.stop()
                raise
            if mpi is None:  # engines started by an MPI launcher know their rank
                ranks = [e.mpi_rank for e in inv]
                self.mpi = None not in ranks and len(set(ranks)) == len(ranks) > 1

    # ------------------------------------------------------------------ construction
    @classmethod
    def local(cls, n: int = 2, mpi: bool = False, *, threads_per_engine: int | None = 1,
              env: dict[str, str] | None = None, heartbeat_ms: int = 500,
              timeout: float = 60.0, check: bool = True, **ipp_kwargs: Any) -> Cluster:
        """Start ``n`` engines on this machine (bound to localhost) and connect to them.

        Args:
            n: number of engines (>= 1).
            mpi: launch the engines with ``mpiexec`` so they can ``Allreduce`` (needs
                ``pip install 'mao_lab[mpi]'``).
            threads_per_engine: BLAS/OpenMP threads per engine (None leaves them alone).
            env: extra environment variables for the engines.
            heartbeat_ms: controller heartbeat period; an engine missing 4 beats is dropped,
                so a hung (SIGSTOPped) engine is detected within ~4 periods.
            timeout: seconds to wait for the engines to register.
            check: take the inventory and check mao_lab versions right away.
            **ipp_kwargs: passed to ``ipyparallel.Cluster``.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"Cluster.local: n must be an integer >= 1; received n={n!r}")
        ipp = require("ipyparallel", "", "a mao_lab cluster")
        engine_env = {"POCL_AFFINITY": "1", "PYTHONUNBUFFERED": "1"}
        if threads_per_engine is not None:
            t = str(int(threads_per_engine))
            engine_env.update(OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t)
        engine_env.update(env or {})
        kwargs: dict[str, Any] = {"log_level": logging.WARNING}
        kwargs.update(ipp_kwargs)
        args = list(kwargs.pop("controller_args", []))
        args += [f"--HeartMonitor.period={int(heartbeat_ms)}",
                 "--HeartMonitor.max_heartmonitor_misses=4", "--ip=127.0.0.1"]
        if mpi:
            require("mpi4py", "mpi", "MPI engines")
            kwargs["engines"] = "mpi"
        ipc = ipp.Cluster(n=n, controller_args=args, **kwargs)
        if mpi:
            mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
            ipc.config.MPILauncher.mpi_cmd = [mpiexec if os.path.exists(mpiexec) else "mpiexec"]
        client = None
        try:
            ipc.start_controller_sync()
            ipc.start_engines_sync(n, environment=engine_env)
            client = ipc.connect_client_sync()
            client.wait_for_engines(n, timeout=timeout)
        except BaseException as exc:
            _quiet_stop(client, ipc)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ClusterError(f"Cluster.local(n={n}, mpi={mpi}) failed to start: {exc}. "
                               f"Engine output:\n{_launcher_output(ipc)}") from exc
        cluster = cls(client, ipc, owns=True, mpi=mpi, check=check)
        cluster._engine_env = engine_env
        return cluster

    def add_engines(self, n: int = 1, timeout: float = 60.0) -> list[int]:
        """Start ``n`` more local engines (a node joins); returns their ids.

        A running parameter-server fit takes them in at its next epoch.
        """
        if self.ipp_cluster is None or self.mpi or getattr(self, "_targets", None) is not None:
            raise ClusterError("add_engines works on a non-MPI cluster started by "
                               "Cluster.local; start engines elsewhere with ipcluster engines")
        before = set(self.client.ids)
        self.ipp_cluster.start_engines_sync(n, environment=getattr(self, "_engine_env", {}))
        self.client.wait_for_engines(len(before) + n, timeout=timeout)
        new = sorted(set(self.client.ids) - before)
        self.inventory(refresh=True)
        return new

    @classmethod
    def connect(cls, profile: str | None = None, cluster_id: str | None = None,
                connection_file: str | None = None, *, n: int | None = None,
                timeout: float = 30.0, check: bool = True) -> Cluster:
        """Connect to a running cluster (ipcluster with MPI, SSH, Slurm, Kubernetes...).

        Args:
            profile: IPython profile name of the cluster.
            cluster_id: cluster id given to ``ipcluster start --cluster-id``.
            connection_file: path to an ``ipcontroller-client.json`` file.
            n: wait until at least ``n`` engines have registered.
            timeout: seconds to wait for the controller and the engines.
            check: take the inventory and check mao_lab versions right away.
        """
        ipp = require("ipyparallel", "", "a mao_lab cluster")
        try:
            if connection_file is not None:
                if not os.path.exists(connection_file):
                    raise ClusterError(f"connection file {connection_file!r} does not exist")
                client = ipp.Client(connection_file, timeout=timeout)
            else:
                client = ipp.Client(profile=profile or "default", cluster_id=cluster_id or "",
                                    timeout=timeout)
        except ClusterError:
            raise
        except Exception as exc:
            where = connection_file or f"profile={profile!r}, cluster_id={cluster_id!r}"
            raise ClusterError(f"could not connect to a cluster ({where}): {exc}") from exc
        if n:
            try:
                client.wait_for_engines(n, timeout=timeout)
            except Exception as exc:
                got = len(client.ids)
                client.close()
                raise ClusterError(f"expected at least {n} engines within {timeout} s; "
                                   f"received {got}") from exc
        return cls(client, None, owns=False, mpi=None, check=check)

    def subset(self, ids: list[int]) -> Cluster:
        """A view of some of these engines (train on them only); stopping it stops nothing.

        Example:
            >>> one = cluster.subset(cluster.ids[:1])   # doctest: +SKIP
        """
        unknown = sorted(set(ids) - set(self.ids))
        if not ids or unknown:
            raise ClusterError(f"subset: expected a non-empty list of engine ids from "
                               f"{self.ids}; received {ids!r}")
        view = Cluster.__new__(Cluster)
        view.__dict__.update(self.__dict__)
        view._owns, view._targets = False, list(ids)
        view._stopped = False
        if self._inventory is not None:
            view._inventory = Inventory(e for e in self._inventory if e.id in ids)
        return view

    # ------------------------------------------------------------------ properties
    @property
    def ids(self) -> list[int]:
        """Ids of the engines registered right now."""
        if self._stopped:
            return []
        targets = getattr(self, "_targets", None)
        return [e for e in self.client.ids if targets is None or e in targets]

    @property
    def size(self) -> int:
        """Number of engines registered right now."""
        return len(self.ids)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else f"{self.size} engines"
        return f"<mao_lab Cluster {state}{' mpi' if self.mpi else ''}>"

    # ------------------------------------------------------------------ inventory
    def inventory(self, refresh: bool = False, check: bool = True) -> Inventory:
        """Host, pid, mao_lab version, MPI rank and devices of every engine.

        Raises:
            ClusterError: an engine cannot import mao_lab or runs another version (the
                message names the engine, its host and pid), when ``check`` is true.
        """
        if self._inventory is not None and not refresh:
            return self._inventory
        view = self.client[self.ids]
        try:
            view.execute(_PROBE, block=True)
            results = view.pull("_mao_probe_result", block=True)
        except Exception as exc:
            raise ClusterError(f"taking the engine inventory failed: {exc}") from exc
        old = {e.id: e for e in (self._inventory or [])}
        inv = Inventory()
        for eid, r in zip(view.targets, results):
            e = EngineInfo(id=eid, **r)
            if eid in old:
                e.device, e.samples_per_s = old[eid].device, old[eid].samples_per_s
            inv.append(e)
        self._inventory = inv
        if check:
            self.check_versions(inv)
        return inv

    @staticmethod
    def check_versions(inv: list[EngineInfo]) -> None:
        """Raise ClusterError naming every engine without mao_lab or with another version."""
        mine = _version()
        bad = []
        for e in inv:
            where = f"engine {e.id} (host {e.host}, pid {e.pid})"
            if e.version is None:
                bad.append(f"{where} cannot import mao_lab: {e.error}")
            elif e.version != mine:
                bad.append(f"{where} runs mao_lab {e.version}, expected {mine} (the client's)")
        if bad:
            raise ClusterError("engines do not match this client: " + "; ".join(bad) +
                               ". Install the same mao_lab version on every engine.")

    def engine(self, eid: int) -> EngineInfo:
        """The inventory entry of engine ``eid``."""
        for e in self.inventory():
            if e.id == eid:
                return e
        raise ClusterError(f"no engine {eid}; engines: {self.ids}")

    def is_local(self, eid: int) -> bool:
        """True when engine ``eid`` runs on this host (its pid can be signalled)."""
        return self.engine(eid).host == socket.gethostname()

    # ------------------------------------------------------------------ debugging
    def output(self, eid: int | None = None) -> str:
        """stdout/stderr written by the engine processes this object started.

        Args:
            eid: one engine (by id) or None for all. Engines of a connected cluster write
                to their own launcher's logs; then this says so.
        """
        if self.ipp_cluster is None:
            return ("engines were not started by this Cluster: their output is in the logs "
                    "of the launcher that started them (ipcluster --log-to-file)")
        if eid is None:
            return _launcher_output(self.ipp_cluster)
        pid = self.engine(eid).pid
        for es in self.ipp_cluster.engines.values():
            for launcher in getattr(es, "launchers", {}).values():
                if getattr(launcher, "pid", None) == pid:
                    return launcher.get_output()
        return _launcher_output(self.ipp_cluster)  # MPI: one launcher for all engines

    # ------------------------------------------------------------------ lifetime
    def stop(self) -> None:
        """Stop the engines and controller this object started (idempotent, never raises)."""
        if self._stopped:
            return
        self._stopped = True
        if self._owns:
            _quiet_stop(self.client, self.ipp_cluster)
        elif getattr(self, "_targets", None) is not None:
            return  # a subset view shares its parent's client
        else:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    close = stop

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _launcher_output(ipc: Any) -> str:
    parts = []
    try:
        for es in ipc.engines.values():
            parts.append(es.get_output())
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        parts.append(f"(engine output unavailable: {exc})")
    return "\n".join(p for p in parts if p)


def _quiet_stop(client: Any, ipc: Any) -> None:
    if client is not None:
        try:  # engines asked to shut down exit with 0, so the launcher does not dump their logs
            if client.ids:  # not block=True: a hung (SIGSTOP) engine would never reply
                client.shutdown(targets="all", hub=False, block=False)
                deadline = time.monotonic() + 3.0
                while client.ids and time.monotonic() < deadline:
                    time.sleep(0.05)
        except Exception:  # noqa: BLE001 - dead or busy engines are stopped by the launcher
            pass
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
    if ipc is not None:
        try:
            ipc.stop_cluster_sync()
        except Exception as exc:  # noqa: BLE001 - stopping must not raise
            log.warning("stopping the cluster failed: %s", exc)
