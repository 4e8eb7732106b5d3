"""Out-of-core scan of Parquet files/directories and row-group-range shards."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mao_lab.data import Dataset, from_numpy, parquet_shards, scan
from mao_lab.data._arrow import buffer_range, tensor_array
from mao_lab.errors import DataError


@pytest.fixture
def pdir(tmp_path):
    """3 files, 250 rows in row groups of 40: feature = row id, label = id % 5."""
    ids = np.arange(250)
    ds = from_numpy(np.repeat(ids.astype(np.float32)[:, None], 3, axis=1), ids % 5)
    for i, part in enumerate(ds.shard([100, 100, 50])):
        part.to_parquet(tmp_path / f"p{i}.parquet", row_group_size=40)
    return tmp_path


def _ids(batches) -> list[int]:
    return np.concatenate([x[:, 0] for x, _ in batches]).astype(int).tolist()


def test_scan_in_order_full_batches(pdir):
    s = Dataset.scan(pdir, batch_size=32)
    assert s.feature_shape == (3,) and s.num_classes == 5
    got = list(s)
    assert [len(y) for _, y in got] == [32] * 7 + [26]
    assert _ids(got) == list(range(250))
    for x, y in got:
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(y, x[:, 0].astype(int) % 5)
    assert [len(y) for _, y in scan(pdir, 32, drop_last=True)] == [32] * 7


def test_scan_batches_inside_a_record_batch_are_views(pdir):
    got = list(scan(pdir / "p0.parquet", batch_size=10))
    # consecutive batches are adjacent slices of one decoded row group, not copies
    assert buffer_range(got[0][0])[1] == buffer_range(got[1][0])[0]
    assert buffer_range(got[1][0])[1] == buffer_range(got[2][0])[0]


def test_scan_shuffle_buffer_covers_every_row_once(pdir):
    a = _ids(scan(pdir, 16, shuffle_buffer=64, seed=1))
    assert sorted(a) == list(range(250)) and a != list(range(250))
    assert a == _ids(scan(pdir, 16, shuffle_buffer=64, seed=1))
    assert a != _ids(scan(pdir, 16, shuffle_buffer=64, seed=2))
    first = a[:50]  # the order mixes row groups: not just the first file's rows
    assert max(first) > 100


def test_scan_columns_and_filter(pdir):
    got = _ids(scan(pdir, 50, filter=[("label", "==", 2)]))
    assert got == list(range(2, 250, 5))
    with pytest.raises(DataError, match=r"no column\(s\) \['img'\]"):
        scan(pdir, 8, columns=["img", "label"])
    with pytest.raises(DataError, match="batch_size must be a positive int"):
        scan(pdir, 0)
    with pytest.raises(DataError, match="shuffle_buffer must be an int >= 0"):
        scan(pdir, 8, shuffle_buffer=-1)
    with pytest.raises(DataError, match="no \\*.parquet files"):
        scan(_empty(pdir), 8)


def _empty(pdir):
    d = pdir / "empty"
    d.mkdir()
    return d


def test_scan_reports_nan_and_bad_labels_per_batch(tmp_path):
    x = np.ones((20, 2), np.float32)
    x[13, 1] = np.nan
    labels = np.arange(20) % 3  # a plain Parquet file: no mao_lab metadata
    pq.write_table(pa.table({"x": tensor_array(x, (2,)), "label": labels}),
                   tmp_path / "n.parquet", row_group_size=8)
    with pytest.raises(DataError, match="NaN or inf"):
        list(scan(tmp_path / "n.parquet", 4))
    got = list(scan(tmp_path / "n.parquet", 4, nan_policy="drop"))
    assert sum(len(y) for _, y in got) == 19
    s = scan(tmp_path / "n.parquet", 4)
    assert s.num_classes == 3  # from the Parquet column statistics
    bad = from_numpy(np.ones((20, 2), np.float32), np.arange(20) % 3)
    table = bad.table.replace_schema_metadata({b"mao_lab": b'{"num_classes": 2, '
                                               b'"label": "label", "features": ["x"]}'})
    pq.write_table(table, tmp_path / "l.parquet", row_group_size=8)
    with pytest.raises(DataError, match=r"must lie in \[0, 2\); received values in \[0, 2\]"):
        list(scan(tmp_path / "l.parquet", 4))


def test_parquet_shards_are_row_group_ranges(pdir):
    shards = parquet_shards(pdir, [3, 1, 2])
    groups = [(f, g) for s in shards for f, gs in s.pieces for g in gs]
    all_groups = [(str(pdir / f"p{i}.parquet"), g) for i, n in enumerate([3, 3, 2])
                  for g in range(n)]
    assert groups == all_groups  # exact cover, in order
    rows = [s.num_rows for s in shards]
    assert sum(rows) == 250 and rows == [140, 40, 70]  # nearest row-group boundaries
    read = [s.read() for s in shards]
    assert sum((_ids([r.numpy()]) for r in read), []) == list(range(250))
    assert _ids(shards[2].scan(25)) == list(range(180, 250))
    with pytest.raises(DataError, match="has only 8 non-empty row groups"):
        parquet_shards(pdir, [1] * 9)
    with pytest.raises(DataError, match="must not all be zero"):
        parquet_shards(pdir, [0, 0])


def test_corrupt_parquet_in_scan(pdir):
    raw = (pdir / "p2.parquet").read_bytes()
    (pdir / "p2.parquet").write_bytes(raw[:100])
    with pytest.raises(DataError, match="corrupt or truncated"):
        list(scan(pdir, 32))


@pytest.mark.parametrize("extension", [False, True])
def test_binary_tensor_encoding_round_trips_and_streams(tmp_path, extension):
    from mao_lab.data import read_parquet

    x = np.arange(30 * 6, dtype=np.float32).reshape(30, 2, 3)
    ds = from_numpy(x, np.arange(30) % 4, extension=extension, class_names=list("abcd"))
    ds.slice(5, 30).to_parquet(tmp_path / "b.parquet", tensor_encoding="binary",
                               row_group_size=8)
    typ = pq.read_schema(tmp_path / "b.parquet").field("x").type
    assert pa.types.is_fixed_size_binary(typ) and typ.byte_width == 24
    back = read_parquet(tmp_path / "b.parquet")
    assert back.feature_shape == (2, 3) and back.class_names == list("abcd")
    assert isinstance(back.table.schema.field("x").type, pa.FixedShapeTensorType) == extension
    np.testing.assert_array_equal(back.numpy()[0], x[5:])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in scan(tmp_path, 7)]), x[5:])
    shard = parquet_shards(tmp_path, [1, 1])[1].read()
    np.testing.assert_array_equal(shard.numpy()[0], x[5 + 16:])
    with pytest.raises(DataError, match="tensor_encoding must be"):
        ds.to_parquet(tmp_path / "c.parquet", tensor_encoding="blob")


@pytest.fixture(scope="module")
def many_groups(tmp_path_factory):
    """2 files, 23 row groups of 1-9 rows (uneven), feature = row id."""
    d = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(0)
    start = 0
    for f in range(2):
        sizes = rng.integers(1, 10, 12 if f == 0 else 11)
        ds = from_numpy(np.arange(start, start + sizes.sum(), dtype=np.float32)[:, None],
                        np.zeros(sizes.sum(), np.int64))
        with pq.ParquetWriter(d / f"g{f}.parquet", ds.table.schema) as w:
            off = 0
            for k in sizes:
                w.write_table(ds.table.slice(off, int(k)))
                off += int(k)
        start += int(sizes.sum())
    assert sum(pq.ParquetFile(f).num_row_groups for f in d.glob("*.parquet")) == 23
    return d, start


@settings(max_examples=40, deadline=None)
@given(w=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=6)
       .filter(lambda w: sum(w) > 0))
def test_parquet_shards_property(many_groups, w):
    d, total = many_groups
    shards = parquet_shards(d, w)
    assert len(shards) == len(w)
    rows = sum((_ids([s.read().numpy()]) if s.pieces else [] for s in shards), [])
    assert rows == list(range(total))  # every row group exactly once, in order
    assert all(s.num_rows > 0 for s, x in zip(shards, w) if x > 0)
    assert all(not s.pieces for s, x in zip(shards, w) if x == 0)
    assert parquet_shards(d, w) == shards  # deterministic
