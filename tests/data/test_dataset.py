"""Dataset construction, numpy access, batching and zero-copy guarantees."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mao_lab.data import Dataset, from_numpy
from mao_lab.data._arrow import buffer_range, tensor_array
from mao_lab.errors import DataError


def _ds(n=10, shape=(2, 3), dtype=np.float32, classes=3, extension=False):
    x = np.arange(n * int(np.prod(shape)), dtype=dtype).reshape((n, *shape))
    return from_numpy(x, np.arange(n) % classes, extension=extension), x


def _inside(view: np.ndarray, owner_start: int, owner_end: int) -> bool:
    a, b = buffer_range(view)
    return owner_start <= a and b <= owner_end


@pytest.mark.parametrize("extension", [False, True])
def test_properties_and_numpy_values(extension):
    ds, x = _ds(extension=extension)
    assert len(ds) == 10 and ds.feature_shape == (2, 3) and ds.num_classes == 3
    assert ds.schema.field("x").type.storage_type if extension else True
    xs, ys = ds.numpy()
    assert xs.dtype == np.float32 and xs.shape == (10, 2, 3) and ys.dtype == np.int64
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, np.arange(10) % 3)
    np.testing.assert_array_equal(ds.class_counts(), [4, 3, 3])
    assert "rows=10" in repr(ds) and "(2, 3)" in repr(ds) and "3 classes" in repr(ds)
    assert "<table>" in ds._repr_html_()


def test_from_numpy_wraps_without_copy_and_numpy_is_a_view():
    x = np.random.default_rng(0).random((50, 4), dtype=np.float32)
    ds = from_numpy(x, np.zeros(50, np.int64))
    xs, ys = ds.numpy()
    assert np.shares_memory(xs, x)  # the Arrow column wraps the caller's buffer
    col = ds.table.column("x").chunk(0).flatten()
    assert buffer_range(xs)[0] == col.buffers()[1].address


def test_batches_are_zero_copy_views_within_a_chunk():
    ds, _ = _ds(n=100, shape=(5,))
    x_all = ds.numpy()[0]
    lo, hi = buffer_range(x_all)
    sizes = []
    for xb, yb in ds.batches(16):
        assert _inside(xb, lo, hi) and np.shares_memory(xb, x_all)
        sizes.append(len(yb))
    assert sizes == [16] * 6 + [4]
    assert len(ds.batches(16)) == 7 and len(ds.batches(16, drop_last=True)) == 6
    assert [len(y) for _, y in ds.batches(16, drop_last=True)] == [16] * 6


def test_batches_across_chunks_copy_only_boundary_batches():
    a, _ = _ds(n=10, shape=(3,))
    b = from_numpy(np.full((7, 3), 5, np.float32), np.zeros(7, np.int64), num_classes=3)
    ds = Dataset(pa.concat_tables([a.table, b.table]))
    assert ds.table.column("x").num_chunks == 2
    got = list(ds.batches(4))
    assert [len(y) for _, y in got] == [4, 4, 4, 4, 1]
    xs = np.concatenate([g[0] for g in got])
    np.testing.assert_array_equal(xs[:10], a.numpy()[0])
    np.testing.assert_array_equal(xs[10:], 5)
    first_chunk = a.numpy()[0]
    assert np.shares_memory(got[0][0], first_chunk)       # rows 0-3: view
    assert not np.shares_memory(got[2][0], first_chunk)   # rows 8-11 cross the boundary: copy


def test_shuffled_batches_cover_every_row_once_and_are_seeded():
    ds, _ = _ds(n=37, shape=(1,), classes=1)
    rows = np.concatenate([x[:, 0] for x, _ in ds.batches(8, shuffle=True, seed=3)])
    assert sorted(rows.tolist()) == list(range(37))
    again = np.concatenate([x[:, 0] for x, _ in ds.batches(8, shuffle=True, seed=3)])
    np.testing.assert_array_equal(rows, again)
    other = np.concatenate([x[:, 0] for x, _ in ds.batches(8, shuffle=True, seed=4)])
    assert not np.array_equal(rows, other)


def test_uint8_features_are_converted_to_float32_values():
    x = np.arange(24, dtype=np.uint8).reshape(4, 6)
    ds = from_numpy(x, [0, 1, 0, 1])
    assert ds.dtype == np.uint8
    xs, _ = ds.numpy()
    assert xs.dtype == np.float32
    np.testing.assert_array_equal(xs, x.astype(np.float32))


def test_scalar_feature_columns_are_stacked():
    t = pa.table({"a": [1.0, 2.0, 3.0], "b": pa.array([4, 5, 6], pa.int32()),
                  "y": pa.array([0, 1, 1], pa.int8())})
    ds = Dataset(t)
    assert ds.label == "y" and ds.features == ("a", "b") and ds.feature_shape == (2,)
    xs, ys = ds.numpy()
    np.testing.assert_array_equal(xs, [[1, 4], [2, 5], [3, 6]])
    assert ys.dtype == np.int64 and ys.tolist() == [0, 1, 1]


def test_take_slice_shuffle_and_metadata_survive():
    ds, x = _ds(n=12, classes=4)
    s = ds.slice(3, 7)
    assert len(s) == 4 and s.num_classes == 4
    assert np.shares_memory(s.numpy()[0], ds.numpy()[0])
    t = ds.take([11, 0, 5])
    np.testing.assert_array_equal(t.numpy()[0], x[[11, 0, 5]])
    sh = ds.shuffle(seed=1)
    assert sorted(sh.numpy()[1].tolist()) == sorted(ds.numpy()[1].tolist())
    assert Dataset(sh.table).feature_shape == (2, 3)  # metadata travels with the table
    assert len(ds[2:5]) == 3 and len(ds[::2]) == 6


def test_variable_lists_with_equal_lengths_become_fixed():
    t = pa.table({"x": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32())),
                  "label": [0, 1]})
    ds = Dataset(t)
    assert ds.feature_shape == (2,)
    np.testing.assert_array_equal(ds.numpy()[0], [[1, 2], [3, 4]])


# ---------------------------------------------------------------------- bad input
def test_ragged_rows_name_the_rows():
    t = pa.table({"x": pa.array([[1.0, 2.0], [3.0], [4.0, 5.0]], pa.list_(pa.float32())),
                  "label": [0, 1, 0]})
    with pytest.raises(DataError, match=r"ragged.*expected every row to hold 2.*rows \[1\]"):
        Dataset(t)
    with pytest.raises(DataError, match="ragged"):
        from_numpy(np.array([[1.0, 2.0], [3.0]], dtype=object), [0, 1])


def test_wrong_feature_dtype_and_wrong_shape():
    t = pa.table({"x": tensor_array(np.zeros((3, 4)), (4,)), "label": [0, 1, 2]})
    with pytest.raises(DataError, match=r"holds double; expected float32 or uint8"):
        Dataset(t)
    t = pa.table({"x": tensor_array(np.zeros((3, 4), np.float32), (4,)), "label": [0, 1, 2]})
    with pytest.raises(DataError, match=r"feature_shape \(3, 3\) does not fit.*row size 4"):
        Dataset(t, feature_shape=(3, 3))
    with pytest.raises(DataError, match="type string; expected numbers"):
        Dataset(pa.table({"a": ["x"], "label": [0]}))


def test_missing_columns_name_the_existing_ones():
    ds, _ = _ds()
    with pytest.raises(DataError, match=r"\['pixels'\] not found.*\['x', 'label'\]"):
        Dataset(ds.table, features="pixels")
    with pytest.raises(DataError, match=r"label.*\['nope'\] not found"):
        Dataset(ds.table, label="nope")
    with pytest.raises(DataError, match="no label column"):
        Dataset(pa.table({"a": [1.0]}))


def test_labels_out_of_range_or_wrong_type():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(DataError, match=r"must lie in \[0, 2\); received values in \[0, 2\]"):
        from_numpy(x, [0, 1, 2], num_classes=2)
    with pytest.raises(DataError, match=r"must lie in \[0, 3\).*\[-1, 1\]"):
        from_numpy(x, [-1, 0, 1], num_classes=3)
    with pytest.raises(DataError, match="non-integral floats"):
        from_numpy(x, [0.5, 1, 0])
    with pytest.raises(DataError, match="received dtype <U1"):
        from_numpy(x, ["a", "b", "c"])
    with pytest.raises(DataError, match="label column 'label' has type double"):
        Dataset(pa.table({"x": tensor_array(x, (2,)), "label": [0.0, 1.0, 0.0]}))
    with pytest.raises(DataError, match="1-D array of 3 labels"):
        from_numpy(x, [0, 1])


def test_nan_policy_raise_drop_fill():
    x = np.ones((5, 2), np.float32)
    x[1, 0], x[3, 1] = np.nan, np.inf
    y = np.arange(5) % 2
    with pytest.raises(DataError, match=r"2 rows hold NaN or inf.*\[1, 3\].*nan_policy='drop'"):
        from_numpy(x, y)
    dropped = from_numpy(x, y, nan_policy="drop")
    assert len(dropped) == 3 and dropped.numpy()[1].tolist() == [0, 0, 0]
    filled = from_numpy(x, y, nan_policy="fill", fill_value=-1.0)
    assert filled.numpy()[0][1, 0] == -1 and filled.numpy()[0][3, 1] == -1
    assert np.isfinite(filled.numpy()[0]).all() and len(filled) == 5
    with pytest.raises(DataError, match="nan_policy must be one of"):
        from_numpy(x, y, nan_policy="ignore")


def test_empty_dataset_and_bad_batch_size():
    with pytest.raises(DataError, match="0 rows"):
        from_numpy(np.zeros((0, 2), np.float32), np.zeros(0, np.int64))
    ds, _ = _ds()
    for bad in (0, -3, 2.5, True, None):
        with pytest.raises(DataError, match=f"batch_size must be a positive int; received "
                                            f"{bad!r}"):
            ds.batches(bad)
    with pytest.raises(DataError, match="empty dataset"):
        ds.slice(0, 0).batches(4)
    with pytest.raises(DataError, match="pyarrow.Table"):
        Dataset(np.zeros((2, 2)))


def test_labels_view_and_split_of_uint8_data():
    x = np.arange(40, dtype=np.uint8).reshape(20, 2)
    ds = from_numpy(x, np.arange(20) % 2)
    assert np.shares_memory(ds.labels(), ds.numpy()[1])
    a, b = ds.split([0.5, 0.5], seed=0)
    assert a.dtype == np.uint8 and a.class_counts().tolist() == [5, 5]
    np.testing.assert_array_equal(np.sort(np.concatenate([a.numpy()[0][:, 0],
                                                          b.numpy()[0][:, 0]])), x[:, 0])


def test_concat_keeps_chunks_and_checks_layout():
    a, xa = _ds(n=5, classes=2)
    b, xb = _ds(n=4, classes=3)
    c = Dataset.concat([a, b])
    assert len(c) == 9 and c.num_classes == 3 and c.table.column("x").num_chunks == 2
    np.testing.assert_array_equal(c.numpy()[0], np.concatenate([xa, xb]))
    assert np.shares_memory(next(iter(c.batches(5)))[0], a.numpy()[0])
    with pytest.raises(DataError, match="one layout"):
        Dataset.concat([a, from_numpy(np.zeros((2, 4), np.float32), [0, 1])])
    with pytest.raises(DataError, match="at least one"):
        Dataset.concat([])
    assert len(Dataset(a.table.to_batches()[0])) == 5  # a RecordBatch is accepted too


def test_permuted_tensor_layout_and_class_names_are_checked():
    typ = pa.fixed_shape_tensor(pa.float32(), [2, 2], permutation=[1, 0])
    storage = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(8, np.float32)), 4)
    t = pa.table({"x": pa.ExtensionArray.from_storage(typ, storage), "label": [0, 1]})
    with pytest.raises(DataError, match=r"permutation \[1, 0\]; expected the row-major"):
        Dataset(t)
    with pytest.raises(DataError, match="class_names has 1 entries; expected num_classes=2"):
        from_numpy(np.zeros((2, 2), np.float32), [0, 1], class_names=["only"])
