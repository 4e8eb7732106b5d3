"""Datasets on Apache Arrow: loaders, batching, splits, speed-proportional shards, streaming.

Depends only on numpy and pyarrow (a leaf beside the model stack).

Example:
    >>> from mao_lab.data import load_mnist_sample
    >>> train, test = load_mnist_sample().split([0.8, 0.2], seed=0)
    >>> len(train), len(test)
    (4000, 1000)
"""

from __future__ import annotations

from .bundled import load_iris, load_mnist_sample
from .dataset import Batches, Dataset
from .idx import read_idx, read_idx_array, write_idx_array
from .loaders import (
    from_ipc,
    from_numpy,
    read_csv,
    read_ipc,
    read_parquet,
    save_ipc,
    save_parquet,
    to_ipc,
)
from .sharding import proportional_sizes, reshard, shard, split
from .streaming import ParquetShard, Scan, parquet_shards, scan
from .transforms import Standardizer

__all__ = [
    "Batches", "Dataset", "ParquetShard", "Scan", "Standardizer", "from_ipc", "from_numpy",
    "load_iris", "load_mnist_sample", "parquet_shards", "proportional_sizes", "read_csv",
    "read_idx", "read_idx_array", "read_ipc", "read_parquet", "reshard", "save_ipc",
    "save_parquet", "scan", "shard", "split", "to_ipc", "write_idx_array",
]
