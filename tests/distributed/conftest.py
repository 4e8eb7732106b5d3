"""Real local ipyparallel clusters, one per test module (each start costs ~6.5 s)."""

from __future__ import annotations

import pytest

from mao_lab.distributed import Cluster


@pytest.fixture(scope="module")
def cluster2():
    """Two local engines, 1 BLAS thread each; stopped when the module ends."""
    with Cluster.local(n=2) as cluster:
        yield cluster
