"""Real local ipyparallel clusters, shared where possible (each start costs ~6.5 s)."""

from __future__ import annotations

import pytest

from mao_lab.distributed import Cluster


@pytest.fixture(scope="session")
def cluster2():
    """Two local engines, 1 BLAS thread each; shared by the modules that never kill an engine."""
    with Cluster.local(n=2) as cluster:
        yield cluster
