"""Arrow IPC shards through a real local ipyparallel engine: sent as a raw buffer (no pickle
of the arrays), decoded zero-copy on the engine, and sent back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mao_lab.data import Dataset, load_mnist_sample

ipp = pytest.importorskip("ipyparallel")
ROOT = str(Path(__file__).resolve().parents[2])


def _engine_decode(buf, root):
    """Runs on the engine: decode the shard, prove it is a view of the received frame."""
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    import numpy as np

    from mao_lab.data import Dataset

    ds = Dataset.from_ipc(buf)
    x, y = ds.numpy()
    frame = np.frombuffer(buf, dtype=np.uint8)
    lo = frame.__array_interface__["data"][0]
    start = x.__array_interface__["data"][0]
    inside = lo <= start and start + x.nbytes <= lo + frame.nbytes
    back = ds.slice(0, 10).to_ipc()
    return {"rows": len(ds), "shape": list(ds.feature_shape),
            "sum": float(x.sum(dtype=np.float64)),
            "counts": np.bincount(y, minlength=10).tolist(), "zero_copy": bool(inside),
            "type": type(buf).__name__, "back": memoryview(back)}


@pytest.mark.cluster
def test_ipc_shard_round_trip_through_an_engine():
    ds = load_mnist_sample()
    shard = ds.split([0.2, 0.8], seed=0)[0]
    buf = shard.to_ipc()
    with ipp.Cluster(n=1, log_level=40) as rc:
        view = rc[:]
        out = view.apply_sync(_engine_decode, memoryview(buf), ROOT)[0]
    x, y = shard.numpy()
    assert out["type"] == "memoryview"  # arrived as a raw frame, not an unpickled copy
    assert out["zero_copy"]
    assert out["rows"] == 1000 and out["shape"] == [1, 28, 28]
    assert out["counts"] == [100] * 10
    assert out["sum"] == pytest.approx(float(x.sum(dtype=np.float64)), rel=1e-12)
    back = Dataset.from_ipc(out["back"])
    np.testing.assert_array_equal(back.numpy()[0], x[:10])
    np.testing.assert_array_equal(back.numpy()[1], y[:10])
