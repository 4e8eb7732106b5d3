"""fit over a stream of (x, y) batches (e.g. mao_lab.data.streaming.scan of a Parquet
directory): the dataset never has to fit in memory. Each epoch iterates the stream again.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from ._data import as_targets, as_x
from .callbacks import History
from .errors import DataError


def is_stream(x) -> bool:
    """An iterable of batches that is neither an array-like nor a Dataset."""
    return (hasattr(x, "__iter__") and not isinstance(x, (np.ndarray, list, tuple, str, dict))
            and not hasattr(x, "numpy") and not hasattr(x, "__array__"))


def fit_stream(model, stream, epochs: int, val, callbacks, verbose: int) -> History:
    """Train ``model`` on every (x, y) batch ``stream`` yields, ``epochs`` times."""
    steps = len(stream) if hasattr(stream, "__len__") else None
    return model._train_loop(lambda epoch: _stream_batches(model, stream), epochs, steps,
                             None, val, callbacks, verbose)


def _stream_batches(model, stream):
    """(x, y, class ids) host batches of a stream, each checked as fit checks arrays."""
    for b, batch in enumerate(stream):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise DataError(f"fit: a batch stream must yield (x, y) pairs; batch {b} is "
                            f"{type(batch).__name__}")
        xb, yb = batch
        if not model.built:
            model.build(np.shape(xb)[1:])
        xh = as_x(xb, model.input_shape, f"fit (stream batch {b})")
        yh = as_targets(yb, len(xh), model.loss, model.output_shape, f"fit (stream batch {b})")
        yield xh, yh, M.class_ids(yh) if model.metrics else None
