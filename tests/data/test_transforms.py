"""Columnar preprocessing checked against float64 numpy references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mao_lab.data import Dataset, Standardizer, from_numpy
from mao_lab.errors import DataError


def _img(n=30, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 2, 3, 3)) * 10 + 3).astype(dtype)
    return from_numpy(x, np.arange(n) % 3), x


def test_scale_uint8_defaults_to_unit_range():
    x = np.array([[0, 51, 255]], np.uint8)
    ds = from_numpy(x, [0]).scale()
    assert ds.dtype == np.float32
    np.testing.assert_allclose(ds.numpy()[0], [[0, 0.2, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(from_numpy(x, [0]).scale(2.0, -1.0).numpy()[0], [[-1, 101, 509]])
    with pytest.raises(DataError, match="finite"):
        from_numpy(x, [0]).scale(float("nan"))


@pytest.mark.parametrize("extension", [False, True])
def test_scale_keeps_tensor_type_and_labels(extension):
    x = np.arange(8, dtype=np.uint8).reshape(2, 1, 2, 2)
    ds = from_numpy(x, [1, 0], extension=extension).scale()
    assert ds.feature_shape == (1, 2, 2)
    typ = ds.table.schema.field("x").type
    assert isinstance(typ, pa.FixedShapeTensorType) == extension
    assert ds.numpy()[1].tolist() == [1, 0]


@pytest.mark.parametrize("per", ["feature", "channel", "global"])
def test_standardize_fitted_on_train_applied_to_test(per):
    train, xtr = _img(40, seed=1)
    test, xte = _img(15, seed=2)
    stats = train.fit_standardize(per=per)
    xd = xtr.astype(np.float64)
    axes = {"feature": (0,), "channel": (0, 2, 3), "global": (0, 1, 2, 3)}[per]
    mean, std = xd.mean(axis=axes, keepdims=True), xd.std(axis=axes, keepdims=True)
    np.testing.assert_allclose(stats.mean.reshape(-1), mean.reshape(-1), rtol=1e-10)
    np.testing.assert_allclose(stats.std.reshape(-1), std.reshape(-1), rtol=1e-8)
    got_tr, got_te = train.standardize(stats).numpy()[0], test.standardize(stats).numpy()[0]
    np.testing.assert_allclose(got_tr, (xd - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_te, (xte - mean) / std, rtol=1e-5, atol=1e-5)
    assert abs(got_te.mean()) > 1e-4 or per != "feature"  # test set is NOT re-fitted
    assert isinstance(stats, Standardizer)


def test_standardize_constant_feature_and_errors():
    x = np.zeros((4, 3), np.float32)
    x[:, 1] = [1, 2, 3, 4]
    ds = from_numpy(x, [0, 1, 0, 1])
    out = ds.standardize(ds.fit_standardize()).numpy()[0]
    assert np.isfinite(out).all() and (out[:, 0] == 0).all()
    with pytest.raises(DataError, match=r"fitted on feature_shape \(3,\).*\(2,\)"):
        from_numpy(np.zeros((2, 2), np.float32), [0, 1]).standardize(ds.fit_standardize())
    with pytest.raises(DataError, match="per must be one of"):
        ds.fit_standardize(per="row")


def test_standardize_streams_over_chunks():
    a, xa = _img(10, seed=3)
    b, xb = _img(7, seed=4)
    ds = Dataset(pa.concat_tables([a.table, b.table]))
    stats = ds.fit_standardize()
    np.testing.assert_allclose(stats.mean, np.concatenate([xa, xb]).astype(np.float64)
                               .mean(axis=0), rtol=1e-10)
    out = ds.standardize(stats)
    assert out.table.column("x").num_chunks == 2  # chunking preserved, columnar


def test_one_hot_column_and_views():
    ds, _ = _img(6)
    oh = ds.one_hot()
    m = oh.one_hot_labels()
    np.testing.assert_array_equal(m, np.eye(3, dtype=np.float32)[np.arange(6) % 3])
    assert np.shares_memory(m, oh.one_hot_labels())  # a view of the stored column
    assert oh.features == ("x",) and "label_onehot" in oh.table.column_names
    np.testing.assert_array_equal(ds.one_hot_labels(), m)  # computed when absent
    again = Dataset(oh.table)  # round trip keeps the layout
    assert again.features == ("x",) and again.num_classes == 3


@pytest.mark.parametrize("extension", [False, True])
def test_map_changes_shape_per_chunk(extension):
    x = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2)
    a = from_numpy(x, [0, 1], extension=extension)
    ds = Dataset(pa.concat_tables([a.table, a.table]))
    seen = []

    def flat_double(v):
        seen.append((v.dtype, v.flags.writeable))
        return v.reshape(len(v), -1).astype(np.float32) * 2

    out = ds.map(flat_double)
    assert seen == [(np.uint8, False)] * 2  # stored dtype, read-only views, per chunk
    assert out.feature_shape == (4,) and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy()[0], np.concatenate([x, x]).reshape(4, 4) * 2)
    assert Dataset(out.table).feature_shape == (4,)
    kept = ds.map(lambda v: v[:, :, ::-1, :].copy())
    assert kept.dtype == np.uint8 and kept.feature_shape == (1, 2, 2)
    with pytest.raises(DataError, match="map must return"):
        ds.map(lambda v: v[:1])
