"""Cluster start/connect/stop, the engine inventory and the version check, on real engines."""

from __future__ import annotations

import os
import socket

import pytest

import mao_lab
from mao_lab.distributed import Cluster
from mao_lab.errors import ClusterError, ConfigError

pytestmark = pytest.mark.cluster


def test_inventory_names_host_pid_version_and_devices(cluster2):
    inv = cluster2.inventory()
    assert [e.id for e in inv] == cluster2.ids and len(inv) == 2
    pids = {e.pid for e in inv}
    assert len(pids) == 2 and os.getpid() not in pids
    for e in inv:
        assert e.host == socket.gethostname() and e.version == mao_lab.__version__
        assert e.devices[0]["key"] == "numpy" and e.error is None
        assert cluster2.is_local(e.id)
    assert "numpy" in str(inv) and "<table" in inv._repr_html_()
    # the engines really are other processes that honour the per-engine environment
    env = cluster2.client[:].apply_sync(lambda: __import__("os").environ["OPENBLAS_NUM_THREADS"])
    assert env == ["1", "1"]


def test_version_mismatch_is_an_error_naming_the_engine(cluster2):
    eid = cluster2.ids[1]
    cluster2.client[eid].execute("import mao_lab; mao_lab.__version__ = '0.0.0-other'",
                                 block=True)
    try:
        with pytest.raises(ClusterError, match=rf"engine {eid} \(host .*pid \d+\) runs "
                                               rf"mao_lab 0.0.0-other, expected"):
            cluster2.inventory(refresh=True)
    finally:
        cluster2.client[eid].execute(
            f"import mao_lab; mao_lab.__version__ = {mao_lab.__version__!r}", block=True)
    assert cluster2.inventory(refresh=True)[1].version == mao_lab.__version__


def test_connect_by_cluster_id_and_engine_output(cluster2):
    ipc = cluster2.ipp_cluster
    other = Cluster.connect(cluster_id=ipc.cluster_id, n=2)
    try:
        assert other.ids == cluster2.ids and not other.mpi
        assert [e.pid for e in other.inventory()] == [e.pid for e in cluster2.inventory()]
        assert "engines were not started by this Cluster" in other.output()
    finally:
        other.stop()
        other.stop()  # idempotent
    assert other.ids == [] and cluster2.size == 2  # closing a connection stops nothing
    out = cluster2.output(cluster2.ids[0])
    assert "IPEngine" in out
    path = os.path.join(ipc.profile_dir, "security", f"ipcontroller-{ipc.cluster_id}-client.json")
    with Cluster.connect(connection_file=path) as third:
        assert third.ids == cluster2.ids


def test_bad_arguments_and_missing_clusters():
    with pytest.raises(ConfigError, match="n must be an integer >= 1; received n=0"):
        Cluster.local(n=0)
    with pytest.raises(ClusterError, match="connection file .*does not exist"):
        Cluster.connect(connection_file="/nonexistent/ipcontroller-client.json")
    with pytest.raises(ClusterError, match="could not connect"):
        Cluster.connect(cluster_id="no-such-cluster-id", timeout=1)


def test_subset_trains_on_some_engines_and_stops_nothing(cluster2):
    one = cluster2.subset(cluster2.ids[:1])
    assert one.ids == cluster2.ids[:1] and [e.id for e in one.inventory()] == one.ids
    one.stop()
    assert cluster2.size == 2
    with pytest.raises(ClusterError, match="subset: expected a non-empty list"):
        cluster2.subset([99])


def test_an_engine_without_mao_lab_is_named(cluster2, tmp_path):
    # an engine where `import mao_lab` fails, as on a machine without it
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoMaoLab:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mao_lab':\n"
        "            raise ImportError('mao_lab is not installed here')\n"
        "sys.meta_path.insert(0, _NoMaoLab())\n")
    ipc, client = cluster2.ipp_cluster, cluster2.client
    before = set(client.ids)
    env = {"PYTHONPATH": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    es = ipc.start_engines_sync(1, environment=env)
    try:
        client.wait_for_engines(len(before) + 1, timeout=60)
        (new,) = set(client.ids) - before
        with pytest.raises(ClusterError, match=rf"engine {new} \(host .*pid \d+\) cannot "
                                               r"import mao_lab: ImportError: mao_lab is not"):
            cluster2.inventory(refresh=True)
    finally:
        ipc.stop_engines_sync(es)
        import time

        deadline = time.monotonic() + 30
        while set(client.ids) != before and time.monotonic() < deadline:
            time.sleep(0.1)
    assert set(cluster2.ids) == before and len(cluster2.inventory(refresh=True)) == 2
