"""The datasets shipped inside the package: a 5,000-digit MNIST sample and Fisher's iris.

Both are small zstd Parquet files in ``mao_lab/data/bundled/`` (made once by
``scripts/make_bundled_data.py``; provenance and licences in docs/data.md).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ..errors import DataError
from .dataset import Dataset

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
MNIST_FILE = "mnist_5k.parquet"
IRIS_FILE = "iris.parquet"
IRIS_CLASSES = ("setosa", "versicolor", "virginica")


def _read(name: str) -> Dataset:
    path = BUNDLED_DIR / name
    if not path.is_file():
        raise DataError(f"bundled dataset {name} is missing from {BUNDLED_DIR}; reinstall "
                        "mao_lab or run scripts/make_bundled_data.py in a checkout")
    return Dataset(pq.read_table(path))


def load_mnist_sample(scaled: bool = True, flat: bool = False) -> Dataset:
    """5,000 real MNIST digits (500 per class), stored sorted by label.

    Split it with ``split(..., stratify=True)`` (seeded) before training: the rows are
    ordered by class.

    Args:
        scaled: float32 pixels in [0, 1] (default); False keeps the stored uint8 0..255.
        flat: feature shape (784,) instead of (1, 28, 28).

    Example:
        >>> ds = load_mnist_sample()
        >>> len(ds), ds.feature_shape, ds.num_classes
        (5000, (1, 28, 28), 10)
    """
    ds = _read(MNIST_FILE)
    if flat:
        ds = Dataset(ds.table, feature_shape=(784,))
    return ds.scale(1.0 / 255.0) if scaled else ds


def load_iris() -> Dataset:
    """Fisher's iris: 150 flowers x 4 float32 features (sepal length/width, petal
    length/width in cm), labels 0 setosa, 1 versicolor, 2 virginica (50 each).

    Example:
        >>> ds = load_iris()
        >>> len(ds), ds.feature_shape, ds.class_names[0]
        (150, (4,), 'setosa')
    """
    return _read(IRIS_FILE)
