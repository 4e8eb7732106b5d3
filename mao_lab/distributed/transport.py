"""How training rows and models travel to engines: Arrow IPC rows, JSON config + weight arrays.

Rows of a ``mao_lab.data.Dataset`` travel as Arrow IPC stream buffers (raw bytes, no
pickle); plain numpy inputs travel as arrays; for a Parquet path on shared storage the
engines read the row groups holding their rows themselves. A model travels as its JSON
config, compile config and weight arrays, rebuilt on the engine by ``Sequential.from_config``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import DataError, ModelError


class Source:
    """The client's view of the training data, addressable by global row index.

    Args:
        x: a ``mao_lab.data.Dataset`` (then ``y`` is None) or a feature array (N, ...).
        y: labels or targets (N, ...) when ``x`` is an array.
    """

    def __init__(self, x: Any, y: Any = None):
        self.dataset = None
        self.groups: list[tuple[str, int, int]] | None = None  # Parquet: (file, rg, rows)
        if isinstance(x, str | os.PathLike):
            if y is not None:
                raise DataError("a Parquet path carries its labels; pass y=None")
            from ..data.streaming import _metadata, parquet_files

            self.groups = [(f, i, _metadata(f).row_group(i).num_rows)
                           for f in parquet_files(x) for i in range(_metadata(f).num_row_groups)]
            self.starts = np.cumsum([0] + [g[2] for g in self.groups])
            self.n = int(self.starts[-1])
            self._x = self._y = None
        elif hasattr(x, "to_ipc") and hasattr(x, "take"):
            if y is not None:
                raise DataError("pass either a Dataset or (x, y) arrays; received a Dataset "
                                "and y")
            self.dataset = x
            self.n = len(x)
            self._x = self._y = None
        else:
            if y is None:
                raise DataError("training data needs labels: expected fit(x, y) or a Dataset; "
                                "received y=None")
            self._x, self._y = np.asarray(x), np.asarray(y)
            if len(self._x) != len(self._y):
                raise DataError(f"x and y disagree on the number of samples: x has "
                                f"{len(self._x)}, y has {len(self._y)}")
            self.n = len(self._x)

    def __len__(self) -> int:
        return self.n

    def payload(self, idx: np.ndarray) -> dict[str, Any]:
        """Rows ``idx`` packed for an engine (Arrow IPC when the data is a Dataset)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.groups is not None:
            return self._parquet_payload(idx)
        if self.dataset is not None:
            return {"ipc": self.dataset.take(idx).to_ipc().to_pybytes()}
        return {"x": np.ascontiguousarray(self._x[idx]), "y": np.ascontiguousarray(self._y[idx])}

    def arrays(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``idx`` (all when None) as numpy ``(x, y)``, as an engine will see them."""
        if self.groups is not None:
            if idx is None:
                idx = np.arange(self.n)
            return decode(self._parquet_payload(np.asarray(idx, np.int64)))
        if self.dataset is not None:
            ds = self.dataset if idx is None else self.dataset.take(np.asarray(idx, np.int64))
            return ds.numpy()
        if idx is None:
            return self._x, self._y
        return self._x[idx], self._y[idx]

    @property
    def contiguous(self) -> bool:
        """True when engines should own contiguous rows (Parquet: their own row groups)."""
        return self.groups is not None

    def _parquet_payload(self, idx: np.ndarray) -> dict[str, Any]:
        """Which row groups hold ``idx`` and where: the engine reads them itself."""
        g = np.searchsorted(self.starts, idx, side="right") - 1
        pieces: dict[str, list[int]] = {}
        for k in np.unique(g):
            f, rg, _ = self.groups[int(k)]
            pieces.setdefault(f, []).append(rg)
        where = {(f, rg): k for k, (f, rg, _) in enumerate(self.groups)}
        base, offset = {}, 0
        for f, rgs in pieces.items():  # the order ParquetShard.read concatenates them in
            for rg in rgs:
                k = where[(f, rg)]
                base[k] = offset
                offset += self.groups[k][2]
        rows = np.array([base[int(k)] for k in g], np.int64) + idx - self.starts[g]
        return {"parquet": tuple((f, tuple(r)) for f, r in pieces.items()), "rows": rows,
                "num_rows": offset}


def decode(payload: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Engine side: rows from ``Source.payload`` as numpy ``(x, y)``."""
    if "parquet" in payload:  # read only the row groups that hold these rows
        from ..data.streaming import ParquetShard

        shard = ParquetShard(payload["parquet"], int(payload["num_rows"]))
        x, y = shard.read().numpy()
        return x[payload["rows"]], y[payload["rows"]]
    if "ipc" in payload:
        from ..data import Dataset

        return Dataset.from_ipc(payload["ipc"]).numpy()
    return payload["x"], payload["y"]


def model_message(model: Any, with_optimizer_state: bool = True) -> dict[str, Any]:
    """What an engine needs to rebuild ``model``: configs and arrays, never a pickled object."""
    if getattr(model, "optimizer", None) is None:
        raise ModelError("the model is not compiled: call model.compile(optimizer=..., "
                         "loss=...) before training it on a cluster")
    msg: dict[str, Any] = {
        "config": model.get_config(),
        "compile": model.get_compile_config(),
        "weights": [np.asarray(w) for w in model.get_weights()],
        "opt_state": None,
    }
    if with_optimizer_state:
        try:
            msg["opt_state"] = [np.asarray(a) for a in model.optimizer.get_state()]
        except Exception:  # noqa: BLE001 - a fresh optimizer state is a valid fallback
            msg["opt_state"] = None
    return msg


def build_model(msg: dict[str, Any], device: str | None = None) -> Any:
    """Engine side: rebuild a compiled model from ``model_message`` on ``device``."""
    from ..model import Sequential

    model = Sequential.from_config(msg["config"])
    model.compile_from_config(msg["compile"])
    if device is not None:
        model.to(device)
    model.set_weights(msg["weights"])
    if msg.get("opt_state"):
        try:
            model.optimizer.set_state(msg["opt_state"], model.backend)
        except Exception:  # noqa: BLE001 - shapes changed by an edit: start the state afresh
            pass
    return model
