"""Callbacks: how anything (progress bars, early stopping, checkpoints, widgets) watches fit.

``fit`` sets ``callback.model`` and calls the hooks with a ``logs`` dict: per batch
{"loss", "accuracy", "size"} (running epoch means), per epoch the epoch means plus
"val_loss"/"val_accuracy" when there is validation data. Setting
``model.stop_training = True`` ends training after the current epoch.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)


class Callback:
    """Base class with no-op hooks; subclass and override what you need."""

    model: Any = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Fans every hook out to a list of callbacks (batch hooks skipped when none override)."""

    def __init__(self, callbacks, model) -> None:
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise ConfigError(f"callbacks must be mao_lab.callbacks.Callback instances; "
                                  f"received {c!r}")
            c.set_model(model)
        self.batch_hooks = [c for c in self.callbacks
                            if type(c).on_batch_end is not Callback.on_batch_end
                            or type(c).on_batch_begin is not Callback.on_batch_begin]

    def call(self, hook: str, *args) -> None:
        for c in self.callbacks:
            getattr(c, hook)(*args)


class History(Callback):
    """Records epoch logs: ``history.history["loss"]`` is a list over epochs."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


def _fmt(logs: dict) -> dict[str, str]:
    return {k: f"{v:.4f}" for k, v in logs.items() if k != "size" and isinstance(v, float)}


class ProgressBar(Callback):
    """A tqdm.auto bar per epoch: a widget in notebooks, text in a terminal.

    verbose=1 draws the bars; verbose=2 writes one line per epoch instead.
    """

    def __init__(self, verbose: int = 1, update_every: int = 10) -> None:
        self.verbose = verbose
        self.update_every = max(1, int(update_every))
        self.bar = None

    def on_train_begin(self, logs=None):
        self.epochs = (logs or {}).get("epochs", 1)
        self.steps = (logs or {}).get("steps", None)

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.steps, desc=f"Epoch {epoch + 1}/{self.epochs}",
                            unit="batch", leave=True, dynamic_ncols=True)
        self._pending = 0

    def on_batch_end(self, batch, logs=None):
        if self.bar is None:
            return
        self._pending += 1
        if self._pending >= self.update_every:
            self.bar.update(self._pending)
            self._pending = 0
            self.bar.set_postfix(_fmt(logs or {}), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        text = " - ".join(f"{k}: {v}" for k, v in _fmt(logs or {}).items())
        if self.bar is not None:
            self.bar.update(self._pending)
            self.bar.set_postfix(_fmt(logs or {}), refresh=False)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            from tqdm.auto import tqdm

            tqdm.write(f"Epoch {epoch + 1}/{self.epochs} - {text}")

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"{who}: mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(logs: dict, monitor: str, who: str) -> float:
    if monitor not in (logs or {}):
        raise ConfigError(f"{who} monitors {monitor!r} but the epoch logs only have "
                          f"{sorted(logs or {})}; pass validation data or monitor='loss'")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``restore_best_weights=True`` puts back the weights of the best epoch at the end.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        if not isinstance(patience, int) or patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be an int >= 0. Received: "
                              f"patience={patience!r}")
        self.monitor, self.min_delta, self.patience = monitor, abs(float(min_delta)), patience
        self.mode = _mode(monitor, mode, "EarlyStopping")
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.best_weights, self.best_epoch = 0, None, None

    def _better(self, v: float) -> bool:
        if self.mode == "min":
            return v < self.best - self.min_delta
        return v > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        v = _monitored(logs, self.monitor, "EarlyStopping")
        if self._better(v):
            self.best, self.wait, self.best_epoch = v, 0, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None and (
                self.stopped_epoch is not None):
            log.info("EarlyStopping: restoring the weights of epoch %d", self.best_epoch + 1)
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) after each epoch, or only when ``monitor``
    improves (``save_best_only``). ``filepath`` may hold ``{epoch}`` and log keys, e.g.
    "ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"."""

    def __init__(self, filepath: str, monitor: str = "val_loss", save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto") -> None:
        self.filepath, self.monitor = str(filepath), monitor
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _mode(monitor, mode, "ModelCheckpoint")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: list[str] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            v = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not (v < self.best if self.mode == "min" else v > self.best):
                return
            self.best = v
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        self.saved.append(path)
