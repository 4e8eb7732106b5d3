"""The original MNIST IDX format (LeCun et al.): read (gzip or not) and write.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
uint32; the data follow in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}


def _read_bytes(path: str | os.PathLike) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"IDX file not found: {path}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"IDX file {path} is a corrupt or truncated gzip file ({exc})") \
                from exc
    return raw


def read_idx_array(path: str | os.PathLike) -> np.ndarray:
    """One IDX file as a numpy array in native byte order.

    Raises:
        DataError: bad magic number, unknown type code or truncated data.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file: expected the magic bytes 00 00 <type> "
                        f"<ndim>; received {raw[:4].hex(' ') or 'an empty file'}")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X}; expected one of "
                        f"{[f'0x{c:02X}' for c in IDX_TYPES]}")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, expected {head})")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    count = int(np.prod(dims, dtype=np.int64))
    need = head + count * dtype.itemsize
    if len(raw) != need:
        raise DataError(f"{path}: IDX data of shape {dims} needs {need} bytes; the file has "
                        f"{len(raw)} (truncated or trailing bytes)")
    arr = np.frombuffer(raw, dtype, count=count, offset=head).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_idx_array(arr: np.ndarray, path: str | os.PathLike, compress: bool | None = None) \
        -> None:
    """Write ``arr`` as an IDX file (gzip when ``compress`` or the name ends with .gz)."""
    arr = np.asarray(arr)
    code = IDX_CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"IDX cannot store dtype {arr.dtype}; expected one of "
                        f"{sorted(str(d) for d in IDX_CODES)}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    data = header + arr.astype(IDX_TYPES[code], copy=False).tobytes()
    if compress or (compress is None and str(path).endswith(".gz")):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)


def read_idx(images: str | os.PathLike, labels: str | os.PathLike, scale: bool = False,
             num_classes: int | None = 10) -> Dataset:
    """MNIST-style images and labels IDX files as a Dataset with feature shape (1, H, W).

    Args:
        images: IDX file of shape (N, H, W) (uint8 for MNIST); gzip detected by content.
        labels: IDX file of shape (N,).
        scale: convert uint8 pixels to float32 in [0, 1] (otherwise stored as they are).
        num_classes: classes (10 for MNIST); None infers ``max(label) + 1``.

    Example:
        >>> ds = read_idx("train-images.idx3.gz", "train-labels.idx1.gz")  # doctest: +SKIP
    """
    x = read_idx_array(images)
    y = read_idx_array(labels)
    if x.ndim not in (2, 3) or y.ndim != 1:
        raise DataError(f"expected images (N, H, W) and labels (N,); received {x.shape} and "
                        f"{y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{images} holds {x.shape[0]} images but {labels} holds "
                        f"{y.shape[0]} labels; expected the same count")
    if y.dtype.kind not in "iu":
        raise DataError(f"{labels}: labels must be integers; received IDX dtype {y.dtype}")
    shape = (1, *x.shape[1:]) if x.ndim == 3 else x.shape[1:]
    ds = Dataset.from_numpy(x, y, feature_shape=shape, num_classes=num_classes)
    return ds.scale() if scale and x.dtype == np.uint8 else ds
