"""DataParallel: train one model on every engine of a Cluster, as if they were one device.

Validates the configuration, picks the strategy (MPI allreduce or parameter server), runs
the coordinator (blocking, or in a background thread returning a TrainingHandle), and
writes / resumes per-epoch checkpoints (weights, optimizer state, epoch, step, shares).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..callbacks import Callback, CallbackList, History, ProgressBar
from ..errors import ClusterError, ConfigError, ModelError, SerializationError
from .handle import TrainingHandle
from .transport import Source

_STRATEGIES = ("auto", "mpi", "ps")


class DataParallel:
    """Data-parallel training of ``model`` on ``cluster``'s engines (SPMD).

    Each engine holds a copy of the model and its own rows of the data (sent once); every
    step each engine computes the gradient of its local batch, and the global step averages
    them weighted by local batch size, so the result equals one process training on the
    concatenated global batch (``sync_every=1``).

    Args:
        model: a compiled ``mao_lab.Sequential`` (the client's copy stays the main copy).
        cluster: a ``mao_lab.distributed.Cluster``.
        strategy: "mpi" (engines launched with MPI: ``Allreduce`` every step), "ps" (the
            client is the parameter server; works with any launcher, survives engine loss)
            or "auto" (MPI when the engines were launched with it).
        sync_every: PS only: local steps between synchronisations (1 = exact global
            steps; k > 1 = local SGD with weighted parameter averaging every k steps).
        balance: "speed" (local batches proportional to measured speed, re-measured as
            training runs), "equal", or a list of fixed shares, one per engine.
        global_batch_size: samples per global step (default: fit's ``batch_size``).
        device: device for every engine ("numpy", "opencl", "opencl:<p>:<d>", "auto" =
            best GEMM calibration, "fastest" = each engine times a few training steps of
            this model on each of its devices and keeps the fastest), or a dict engine id
            -> device (user-pinned); None uses each engine's default.
        engine_timeout: seconds without an answer (beyond 20 typical rounds) after which an
            engine counts as hung; the first rounds get 60 s more (kernel compilation).
            Dead and SIGSTOPped engines are usually detected sooner, by ipyparallel's
            heartbeat (``Cluster.local(heartbeat_ms=...)``).
        slowdown: engine id -> factor >= 1; that engine sleeps so its steps take ``factor``
            times as long. For tests and demos of speed-proportional shares only.
        round_seconds: MPI: target length of one round (rounds are where shares change,
            edits apply and metrics reach the client).
        publish_every: seconds between live metrics published by each engine.
        alpha: weight of the newest step time in the speed moving average.
        drift: relative change of an ideal share that triggers rebalancing.
        block: default of ``fit(block=...)``.
        checkpoint, resume: defaults of ``fit(checkpoint=..., resume=...)``.

    Example:
        >>> dp = DataParallel(model, cluster, global_batch_size=64)  # doctest: +SKIP
        >>> history = dp.fit(x, y, epochs=3)                           # doctest: +SKIP
    """

    def __init__(self, model: Any, cluster: Any, strategy: str = "auto", sync_every: int = 1,
                 balance: str | Sequence[float] = "speed", global_batch_size: int | None = None,
                 device: str | dict[int, str] | None = None, engine_timeout: float = 30.0,
                 slowdown: dict[int, float] | None = None, round_seconds: float = 0.5,
                 publish_every: float = 0.5, alpha: float = 0.3, drift: float = 0.1,
                 block: bool = True, checkpoint: str | None = None, resume: str | None = None,
                 record_batches: bool = False):
        if not hasattr(cluster, "client") or not hasattr(cluster, "ids"):
            raise ConfigError(f"cluster must be a mao_lab.distributed.Cluster; received "
                              f"{type(cluster).__name__}")
        if not cluster.ids:
            raise ClusterError("the cluster has no engines: expected at least 1, received 0")
        if not getattr(model, "compiled", getattr(model, "optimizer", None) is not None):
            raise ModelError("the model is not compiled: call model.compile(optimizer=..., "
                             "loss=...) before training it on a cluster")
        if strategy not in _STRATEGIES:
            raise ConfigError(f"strategy must be one of {_STRATEGIES}; received {strategy!r}")
        if strategy == "auto":
            strategy = "mpi" if cluster.mpi else "ps"
        if strategy == "mpi" and not cluster.mpi:
            raise ConfigError("strategy='mpi' needs engines launched with MPI "
                              "(Cluster.local(n, mpi=True) or ipcluster --engines=mpi); these "
                              "were not: use strategy='ps'")
        if strategy == "mpi":
            sizes = {e.mpi_size for e in cluster.inventory()}
            if sizes != {len(cluster.ids)}:
                raise ConfigError(f"strategy='mpi' needs every rank of the MPI world: "
                                  f"{len(cluster.ids)} engines here, MPI world size {sizes}")
        if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
            raise ConfigError(f"sync_every must be an integer >= 1; received {sync_every!r}")
        if strategy == "mpi" and sync_every != 1:
            raise ConfigError(f"sync_every={sync_every} applies to strategy='ps' only; MPI "
                              "synchronises every step")
        if isinstance(balance, str) and balance not in ("speed", "equal"):
            raise ConfigError(f"balance must be 'speed', 'equal' or a list of shares; "
                              f"received {balance!r}")
        if not isinstance(balance, str):
            balance = [float(b) for b in balance]
            if len(balance) != len(cluster.ids):
                raise ConfigError(f"balance: expected {len(cluster.ids)} shares (one per "
                                  f"engine); received {len(balance)}")
        if global_batch_size is not None and (not isinstance(global_batch_size, int)
                                              or global_batch_size < 1):
            raise ConfigError(f"global_batch_size must be an integer >= 1; received "
                              f"{global_batch_size!r}")
        for e, f in (slowdown or {}).items():
            if e not in cluster.ids or not f >= 1.0:
                raise ConfigError(f"slowdown: expected engine id -> factor >= 1 for engines "
                                  f"{cluster.ids}; received {e!r}: {f!r}")
        if isinstance(device, dict):
            unknown = sorted(set(device) - set(cluster.ids))
            if unknown:
                raise ConfigError(f"device: engines {unknown} do not exist; engines: "
                                  f"{cluster.ids}")
        self.model, self.cluster, self.strategy = model, cluster, strategy
        self.sync_every, self.balance = sync_every, balance
        self.global_batch_size = global_batch_size
        self.device, self.engine_timeout = device, float(engine_timeout)
        self.slowdown = dict(slowdown or {})
        self.round_seconds, self.publish_every = float(round_seconds), float(publish_every)
        self.alpha, self.drift = float(alpha), float(drift)
        self.initial_mpi_steps = 4
        self.defaults = {"block": block, "checkpoint": checkpoint, "resume": resume,
                         "record_batches": record_batches}
        self.handle: TrainingHandle | None = None
        self.batches: list[np.ndarray] = []

    def device_for(self, engine: int) -> str | None:
        """The device requested for ``engine`` (None: the engine's default)."""
        if isinstance(self.device, dict):
            return self.device.get(engine)
        return self.device

    # ------------------------------------------------------------------ fit
    def fit(self, x: Any, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            seed: int | None = 0, callbacks: Any = None, verbose: int = 0,
            block: bool | None = None, checkpoint: str | None = None,
            resume: str | None = None, record_batches: bool | None = None,
            validation_data: Any = None, validation_split: float = 0.0,
            shuffle: bool = True) -> Any:
        """Train on the cluster; returns a History (``block=True``) or a TrainingHandle.

        Args:
            x, y: a ``mao_lab.data.Dataset`` (y=None), arrays, or the path of a Parquet
                file or directory on storage every engine reads (y=None).
            batch_size: the global batch (unless ``global_batch_size`` was given).
            epochs: passes over the data; every sample is processed exactly once per epoch,
                even when engines are lost (``history["exactly_once"]``).
            seed: seeds data ownership and the per-epoch order.
            callbacks: mao_lab.callbacks.Callback instances (epoch hooks get the logs).
            block: False returns at once with a TrainingHandle.
            checkpoint: directory written at the end of every epoch.
            resume: a checkpoint directory to continue from.
            record_batches: keep the global batches (sample indices) in ``self.batches``.
        """
        opts = dict(self.defaults)
        opts.update({k: v for k, v in {"block": block, "checkpoint": checkpoint,
                                       "resume": resume, "record_batches": record_batches
                                       }.items() if v is not None})
        if validation_split:
            raise ConfigError("validation_split is not supported with cluster=; pass "
                              "validation_data (evaluated on the client after each epoch)")
        if not shuffle:
            raise ConfigError("shuffle=False is not supported with cluster=: engines walk "
                              "their own rows in a seeded order")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1; received {epochs!r}")
        active = getattr(self.cluster, "_active_fit", None)
        if active is not None and not active.done:
            raise ClusterError(f"a fit is already running on this cluster ({active!r}); "
                               "call its stop() and wait() first")
        gbs = self.global_batch_size or batch_size or 32
        source = Source(x, y)
        if len(source) < len(self.cluster.ids):
            raise ConfigError(f"fewer samples than engines: {len(source)} samples for "
                              f"{len(self.cluster.ids)} engines")
        if gbs < len(self.cluster.ids):
            raise ConfigError(f"the global batch ({gbs}) is smaller than the number of "
                              f"engines ({len(self.cluster.ids)})")
        self.global_batch_size = gbs
        _check_first_rows(self.model, source)
        start = load_checkpoint(self.model, opts["resume"]) if opts["resume"] else None
        history = History()
        cbs = [history] + ([ProgressBar(verbose)] if verbose else []) + list(callbacks or [])
        if validation_data is not None:
            cbs.insert(0, _Validation(self.model, validation_data))
        cl = CallbackList(cbs, self.model)
        handle = self.handle = TrainingHandle()
        self.cluster._active_fit = handle
        if start:
            handle.history.update({k: list(v) for k, v in start.get("history", {}).items()})
        ckpt = None
        if opts["checkpoint"]:
            def ckpt(coord, epoch, _dir=opts["checkpoint"]):
                save_checkpoint(_dir, coord, epoch)
        from .coordinator import Coordinator

        coord = Coordinator(self, source, epochs, 0 if seed is None else int(seed), handle,
                            cl, bool(opts["record_batches"]), ckpt, start)
        def target():
            out = coord.run()
            self.batches = out["batches"]
            history.history = {k: list(v) for k, v in handle.history.items()}
            history.epoch = list(range(len(next(iter(history.history.values()), []))))
            self.model.history = history
            return history

        if opts["block"]:
            try:
                result = target()
            except BaseException as exc:
                handle._finish(error=exc)
                raise
            handle._finish(result=result)
            return result
        handle._start(target)
        return handle


class _Validation(Callback):
    """Evaluates validation_data on the client after each epoch (val_* keys)."""

    def __init__(self, model: Any, data: Any):
        self.model, self.data = model, data

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        x, y = (self.data, None) if hasattr(self.data, "batches") else self.data
        for k, v in self.model.evaluate(x, y).items():
            (logs if logs is not None else {})[f"val_{k}"] = v


def _check_first_rows(model: Any, source: Source) -> None:
    """Fail on the client, before any engine works, if the data does not fit the model."""
    x, y = source.arrays(np.arange(min(2, len(source))))
    model.compute_gradients(x, y)


# ---------------------------------------------------------------------- checkpoints
def save_checkpoint(directory: str, coord: Any, epoch: int) -> None:
    """Weights, optimizer state, epoch, step, shares and ownership after ``epoch``."""
    os.makedirs(directory, exist_ok=True)
    model = coord.model
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    try:
        state = model.optimizer.get_state()
    except Exception:  # noqa: BLE001 - optimizers without state
        state = []
    arrays.update({f"o{i}": np.asarray(s) for i, s in enumerate(state)})
    arrays["owner"] = coord.ledger.owner
    meta = {"epoch": epoch + 1, "step": coord.step, "n_weights": len(model.get_weights()),
            "n_opt": len(state), "shares": list(coord.balancer.shares),
            "sec_per_sample": {str(k): v for k, v in coord.balancer.sec_per_sample.items()},
            "engines": list(coord.ledger.engines), "config": model.get_config(),
            "history": {k: list(v) for k, v in coord.handle.history.items()}}
    tmp = os.path.join(directory, "checkpoint.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, os.path.join(directory, "checkpoint.npz"))
    with open(os.path.join(directory, "checkpoint.tmp.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, default=float)
    os.replace(os.path.join(directory, "checkpoint.tmp.json"),
               os.path.join(directory, "checkpoint.json"))


def load_checkpoint(model: Any, directory: str) -> dict[str, Any]:
    """Restore weights and optimizer state into ``model``; returns epoch/step/shares."""
    meta_path = os.path.join(directory, "checkpoint.json")
    if not os.path.exists(meta_path):
        raise SerializationError(f"resume: no checkpoint in {directory!r} (expected "
                                 f"checkpoint.json and checkpoint.npz)")
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    with np.load(os.path.join(directory, "checkpoint.npz"), allow_pickle=False) as z:
        weights = [z[f"w{i}"] for i in range(meta["n_weights"])]
        state = [z[f"o{i}"] for i in range(meta["n_opt"])]
        owner = z["owner"]
    try:
        model.set_weights(weights)
    except Exception as exc:
        raise SerializationError(f"resume: the checkpoint in {directory!r} does not fit this "
                                 f"model: {exc}") from exc
    if state:
        model.optimizer.set_state(state)
    meta["owner"] = owner
    return meta
