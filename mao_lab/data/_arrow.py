"""Arrow <-> numpy plumbing for the data layer: tensor columns, schema metadata, zero-copy views.

A tensor column is a fixed-size list (shape kept in the ``mao_lab`` schema metadata) or
Arrow's canonical fixed-shape tensor extension type; both share the same flat buffer layout.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import DataError

META_KEY = b"mao_lab"
FEATURE_DTYPES = (pa.float32(), pa.uint8())


def read_meta(schema: pa.Schema) -> dict[str, Any]:
    """The ``mao_lab`` JSON block of a schema's metadata ({} when absent or unreadable)."""
    raw = (schema.metadata or {}).get(META_KEY)
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def with_meta(table: pa.Table, meta: dict[str, Any]) -> pa.Table:
    """Return ``table`` with ``meta`` stored as its ``mao_lab`` schema metadata (no data copy)."""
    old = dict(table.schema.metadata or {})
    old[META_KEY] = json.dumps(meta, sort_keys=True).encode()
    return table.replace_schema_metadata(old)


def is_tensor_type(typ: pa.DataType) -> bool:
    """True for fixed-size lists and fixed-shape tensor extension types."""
    return pa.types.is_fixed_size_list(typ) or isinstance(typ, pa.FixedShapeTensorType)


def storage_type(typ: pa.DataType) -> pa.DataType:
    """The storage type of an extension type, else the type itself."""
    return typ.storage_type if isinstance(typ, pa.BaseExtensionType) else typ


def tensor_value_type(typ: pa.DataType) -> pa.DataType:
    """Element type of a tensor column type."""
    return storage_type(typ).value_type


def tensor_shape(typ: pa.DataType) -> tuple[int, ...]:
    """Per-row shape of a tensor type (the flat size for a plain fixed-size list)."""
    if isinstance(typ, pa.FixedShapeTensorType):
        return tuple(int(d) for d in typ.shape)
    return (int(typ.list_size),)


def check_tensor_layout(name: str, typ: pa.DataType) -> None:
    """Refuse tensor extension columns whose logical order is not row-major."""
    if isinstance(typ, pa.FixedShapeTensorType):
        perm = typ.permutation
        if perm is not None and list(perm) != list(range(len(typ.shape))):
            raise DataError(
                f"column '{name}' is a tensor with permutation {list(perm)}; expected the "
                f"row-major layout (permutation None). Received type: {typ}"
            )


def _flat_values(chunk: pa.Array) -> pa.Array:
    """Flat child values of one chunk of a tensor column, honouring slice offsets (no copy)."""
    if isinstance(chunk, pa.ExtensionArray):
        chunk = chunk.storage
    return chunk.flatten()


def chunk_view(chunk: pa.Array, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Numpy view (N, *shape) of one chunk of a tensor column, without copying.

    Raises:
        DataError: if the chunk holds null rows or null elements.
    """
    if chunk.null_count:
        bad = np.flatnonzero(chunk.is_null().to_numpy(zero_copy_only=False))[:5].tolist()
        raise DataError(
            f"column '{name}' has {chunk.null_count} null rows (first at {bad}); expected every "
            "row to hold a full tensor. Drop those rows before building the Dataset."
        )
    values = _flat_values(chunk)
    if values.null_count:
        raise DataError(
            f"column '{name}' has {values.null_count} null elements inside its tensors; "
            "expected dense numbers (fill them first)."
        )
    flat = values.to_numpy(zero_copy_only=True)
    return flat.reshape((len(chunk), *shape))


def scalar_chunk_view(chunk: pa.Array, name: str) -> np.ndarray:
    """Numpy view of one chunk of a scalar numeric column (copies only for booleans)."""
    if chunk.null_count:
        bad = np.flatnonzero(chunk.is_null().to_numpy(zero_copy_only=False))[:5].tolist()
        raise DataError(
            f"column '{name}' has {chunk.null_count} null values (first at rows {bad}); "
            "expected numbers in every row."
        )
    return chunk.to_numpy(zero_copy_only=False)


def tensor_array(x: np.ndarray, shape: tuple[int, ...], extension: bool = False) -> pa.Array:
    """Wrap a C-contiguous (N, *shape) numpy array as an Arrow tensor column (no copy).

    Args:
        x: rows of tensors; made C-contiguous first (the only possible copy).
        shape: per-row shape.
        extension: use the fixed-shape tensor extension type instead of a plain fixed-size list.
    """
    x = np.ascontiguousarray(x)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    values = pa.array(x.reshape(-1))
    storage = pa.FixedSizeListArray.from_arrays(values, size)
    if extension:
        typ = pa.fixed_shape_tensor(values.type, list(shape))
        return pa.ExtensionArray.from_storage(typ, storage)
    return storage


def replace_column(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Replace (or append) column ``name`` keeping its field metadata and position."""
    idx = table.schema.get_field_index(name)
    if idx < 0:
        return table.append_column(name, column)
    field = pa.field(name, column.type, nullable=table.schema.field(idx).nullable)
    return table.set_column(idx, field, column)


def buffer_range(arr: np.ndarray) -> tuple[int, int]:
    """(start, end) byte addresses spanned by ``arr``'s data; used to check zero-copy claims."""
    start = arr.__array_interface__["data"][0]
    return start, start + arr.nbytes


def nbytes_human(n: int) -> str:
    """'3.9 MB'-style size."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


# Parquet stores a fixed-size list with repetition levels, which decodes at ~0.15 GB/s; the
# same bytes as FIXED_LEN_BYTE_ARRAY decode at ~1 GB/s. Writers may therefore store tensor
# columns as fixed-size binary (recorded under "binary_tensors" in the metadata); readers
# reinterpret the bytes as tensors again without copying.
BINARY_KEY = "binary_tensors"


def encode_binary_tensors(table: pa.Table, names) -> pa.Table:
    """Store the tensor columns ``names`` as fixed-size binary (zero-copy reinterpretation)."""
    meta = read_meta(table.schema)
    info = dict(meta.get(BINARY_KEY, {}))
    for name in names:
        typ = table.schema.field(name).type
        if not is_tensor_type(typ):
            continue
        vt, size = tensor_value_type(typ), storage_type(typ).list_size
        width = size * vt.bit_width // 8
        chunks = []
        for chunk in table.column(name).chunks:
            store = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
            values = store.values  # the whole child: row i starts at values.offset + i*size
            data = values.buffers()[1].slice(values.offset * vt.bit_width // 8)
            chunks.append(pa.Array.from_buffers(
                pa.binary(width), len(store),
                [store.buffers()[0] if store.null_count else None, data],
                offset=store.offset))
        info[name] = {"dtype": str(vt), "size": size,
                      "shape": list(typ.shape) if isinstance(typ, pa.FixedShapeTensorType)
                      else None}
        table = replace_column(table, name, pa.chunked_array(chunks, pa.binary(width)))
    meta[BINARY_KEY] = info
    return with_meta(table, meta)


def decode_binary_tensors(table: pa.Table) -> pa.Table:
    """Undo :func:`encode_binary_tensors`: fixed-size binary back to tensor columns, no copy."""
    meta = read_meta(table.schema)
    info = meta.pop(BINARY_KEY, None)
    if not info:
        return table
    for name, spec in info.items():
        if name not in table.column_names:
            continue
        vt = pa.type_for_alias(spec["dtype"])
        size = int(spec["size"])
        typ = pa.list_(vt, size)
        chunks = []
        for chunk in table.column(name).chunks:
            validity, data = chunk.buffers()
            n_all = chunk.offset + len(chunk)
            values = pa.Array.from_buffers(vt, n_all * size, [None, data])
            arr = pa.Array.from_buffers(typ, len(chunk), [validity], offset=chunk.offset,
                                        children=[values])
            if spec.get("shape"):
                arr = pa.ExtensionArray.from_storage(
                    pa.fixed_shape_tensor(vt, spec["shape"]), arr)
            chunks.append(arr)
        out_type = chunks[0].type if chunks else typ
        table = replace_column(table, name, pa.chunked_array(chunks, out_type))
    return with_meta(table, meta)
