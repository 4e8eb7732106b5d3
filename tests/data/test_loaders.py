"""Round trips through every loader and writer, zero-copy IPC, and corrupt-file errors."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mao_lab.data import (
    Dataset,
    from_numpy,
    read_csv,
    read_idx,
    read_idx_array,
    read_ipc,
    read_parquet,
    write_idx_array,
)
from mao_lab.data._arrow import buffer_range
from mao_lab.errors import DataError


@pytest.fixture
def ds():
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 3, 2), dtype=np.float32)
    return from_numpy(x, np.arange(40) % 4, class_names=["a", "b", "c", "d"])


def _same(a: Dataset, b: Dataset):
    np.testing.assert_array_equal(a.numpy()[0], b.numpy()[0])
    np.testing.assert_array_equal(a.numpy()[1], b.numpy()[1])
    assert (a.feature_shape, a.num_classes, a.class_names) == \
        (b.feature_shape, b.num_classes, b.class_names)


def test_ipc_round_trip_is_zero_copy(ds):
    buf = ds.to_ipc()
    back = Dataset.from_ipc(buf)
    _same(ds, back)
    lo, hi = buf.address, buf.address + buf.size
    x, y = back.numpy()
    assert lo <= buffer_range(x)[0] and buffer_range(x)[1] <= hi  # views into the buffer
    assert lo <= buffer_range(y)[0] and buffer_range(y)[1] <= hi
    _same(ds, Dataset.from_ipc(memoryview(buf)))  # any bytes-like object works
    _same(ds, Dataset.from_ipc(buf.to_pybytes()))


def test_ipc_corrupt_buffer(ds):
    raw = ds.to_ipc().to_pybytes()
    with pytest.raises(DataError, match="cannot decode Arrow IPC buffer"):
        Dataset.from_ipc(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="bytes-like"):
        Dataset.from_ipc(12)


def test_parquet_round_trip_projection_and_filter(ds, tmp_path):
    path = tmp_path / "d.parquet"
    ds.to_parquet(path, row_group_size=16)
    assert pq.ParquetFile(path).num_row_groups == 3
    _same(ds, read_parquet(path))
    sub = read_parquet(path, filter=[("label", "<", 2)])
    assert len(sub) == 20 and set(sub.numpy()[1].tolist()) == {0, 1}
    assert sub.num_classes == 4  # metadata keeps the class count
    sub2 = read_parquet(path, columns=["x", "label"], filter=pc.field("label") == 3)
    np.testing.assert_array_equal(sub2.numpy()[0], ds.numpy()[0][3::4])
    with pytest.raises(DataError, match=r"no column\(s\) \['pixels'\].*\['x', 'label'\]"):
        read_parquet(path, columns=["pixels"])
    with pytest.raises(DataError, match="gave 0 rows"):
        read_parquet(path, filter=[("label", ">", 10)])
    with pytest.raises(DataError, match="filter must be"):
        read_parquet(path, filter="label < 3")


def test_parquet_directory(ds, tmp_path):
    for i, part in enumerate(ds.shard([1, 1, 2])):
        part.to_parquet(tmp_path / f"part-{i}.parquet")
    back = read_parquet(tmp_path)
    assert len(back) == 40
    assert sorted(back.numpy()[0][:, 0, 0, 0].tolist()) == \
        sorted(ds.numpy()[0][:, 0, 0, 0].tolist())


def test_corrupt_and_missing_parquet(ds, tmp_path):
    path = tmp_path / "d.parquet"
    ds.to_parquet(path)
    raw = path.read_bytes()
    (tmp_path / "trunc.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="corrupt, truncated"):
        read_parquet(tmp_path / "trunc.parquet")
    with pytest.raises(DataError, match="not found"):
        read_parquet(tmp_path / "missing.parquet")


def test_save_is_atomic(ds, tmp_path):
    path = tmp_path / "d.parquet"
    ds.to_parquet(path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - any writer failure
        ds.to_parquet(path, compression="no-such-codec")
    assert path.read_bytes() == before  # the old file is untouched
    assert os.listdir(tmp_path) == ["d.parquet"]  # and no temp file is left behind
    with pytest.raises(DataError, match="does not exist"):
        ds.to_parquet(tmp_path / "nodir" / "x.parquet")


def test_feather_ipc_file_round_trip_memory_mapped(ds, tmp_path):
    path = tmp_path / "d.arrow"
    ds.to_feather(path)
    back = read_ipc(path)
    _same(ds, back)
    import pyarrow.feather as feather  # Feather v2 readers see the same file
    assert feather.read_table(path).num_rows == 40
    stream = tmp_path / "d.arrows"
    stream.write_bytes(ds.to_ipc().to_pybytes())
    _same(ds, read_ipc(stream))
    (tmp_path / "bad.arrow").write_bytes(b"ARROW1 not really")
    with pytest.raises(DataError, match="cannot read Arrow IPC"):
        read_ipc(tmp_path / "bad.arrow")


def test_csv_column_selection_and_packing(tmp_path):
    path = tmp_path / "d.csv.gz"
    rows = ["a,b,junk,c,label"] + [f"{i},{i * 2},zz,{i * 3},{i % 2}" for i in range(6)]
    path.write_bytes(gzip.compress("\n".join(rows).encode()))
    ds = read_csv(path, features=["a", "c"])
    assert ds.features == ("a", "c") and "junk" not in ds.table.column_names
    np.testing.assert_array_equal(ds.numpy()[0], [[i, i * 3] for i in range(6)])
    packed = read_csv(path, features=["a", "b", "c"], feature_shape=(3,))
    assert packed.feature_shape == (3,) and packed.dtype == np.float32
    np.testing.assert_array_equal(packed.numpy()[0][2], [2, 4, 6])
    with pytest.raises(DataError, match=r"no column\(s\) \['d'\].*'junk'"):
        read_csv(path, features=["a", "d"])
    with pytest.raises(DataError, match="column 'junk' has type string"):
        read_csv(path)
    plain = tmp_path / "n.csv"
    plain.write_text("1.5,2.5,0\n3.5,4.5,1\n")
    nh = read_csv(plain, column_names=["p", "q", "label"])
    np.testing.assert_array_equal(nh.numpy()[0], [[1.5, 2.5], [3.5, 4.5]])


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx_array(images, tmp_path / f"img{ext}")
    write_idx_array(labels, tmp_path / f"lab{ext}")
    raw = (tmp_path / f"img{ext}").read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if gz else b"\x00\x00")
    if not gz:  # header written by hand per the format: 00 00 08 03, dims big-endian
        assert raw[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 4])
    ds = read_idx(tmp_path / f"img{ext}", tmp_path / f"lab{ext}")
    assert ds.feature_shape == (1, 5, 4) and ds.dtype == np.uint8 and ds.num_classes == 10
    np.testing.assert_array_equal(ds.numpy()[0][:, 0], images)
    np.testing.assert_array_equal(ds.numpy()[1], labels)
    scaled = read_idx(tmp_path / f"img{ext}", tmp_path / f"lab{ext}", scale=True)
    np.testing.assert_allclose(scaled.numpy()[0][:, 0], images / 255.0, rtol=1e-6)


def test_idx_other_dtypes(tmp_path):
    for arr in (np.arange(6, dtype=np.int32).reshape(2, 3) - 3,
                np.linspace(-1, 1, 6, dtype=np.float32), np.arange(4, dtype=np.float64)):
        write_idx_array(arr, tmp_path / "a.idx")
        back = read_idx_array(tmp_path / "a.idx")
        assert back.dtype == arr.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back, arr)


def test_idx_bad_files(tmp_path):
    write_idx_array(np.zeros((3, 2, 2), np.uint8), tmp_path / "img")
    write_idx_array(np.zeros(4, np.uint8), tmp_path / "lab")
    raw = (tmp_path / "img").read_bytes()
    (tmp_path / "trunc").write_bytes(raw[:-3])
    with pytest.raises(DataError, match=r"needs 28 bytes; the file has 25"):
        read_idx_array(tmp_path / "trunc")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx_array(tmp_path / "magic")
    (tmp_path / "code").write_bytes(b"\x00\x00\x07\x01" + raw[4:])
    with pytest.raises(DataError, match="unknown IDX type code 0x07"):
        read_idx_array(tmp_path / "code")
    (tmp_path / "gz").write_bytes(gzip.compress(raw)[:-6])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx_array(tmp_path / "gz")
    with pytest.raises(DataError, match="holds 3 images but .* holds 4 labels"):
        read_idx(tmp_path / "img", tmp_path / "lab")
    with pytest.raises(DataError, match="not found"):
        read_idx_array(tmp_path / "nope")


def test_from_numpy_converts_other_dtypes():
    ds = from_numpy(np.arange(6, dtype=np.float64).reshape(3, 2), np.array([0.0, 1.0, 2.0]))
    assert ds.dtype == np.float32 and ds.numpy()[1].dtype == np.int64
    with pytest.raises(DataError, match="real numbers"):
        from_numpy(np.array([["a"]]), [0])
    with pytest.raises(DataError, match="ndim >= 2"):
        from_numpy(np.arange(3.0), [0, 1, 2])
    assert pa.types.is_fixed_size_list(ds.table.schema.field("x").type)


def test_projection_that_drops_the_stored_feature_column(tmp_path):
    t = pa.table({"a": pa.array([1.0, 2.0], pa.float32()), "b": [3.0, 4.0], "label": [0, 1]})
    ds = Dataset(t, features=["a", "b"])
    ds.to_parquet(tmp_path / "t.parquet")
    only_a = read_parquet(tmp_path / "t.parquet", columns=["a", "label"])
    assert only_a.features == ("a",)
    np.testing.assert_array_equal(only_a.numpy()[0], [[1.0], [2.0]])


def test_missing_files_name_the_path(tmp_path):
    for fn in (read_ipc, read_parquet, lambda p: read_csv(p)):
        with pytest.raises(DataError, match="not found"):
            fn(tmp_path / "absent.file")
