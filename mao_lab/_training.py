"""Sequential's training half: compile, fit, evaluate, predict, train_on_batch and the
gradient API data-parallel training uses (compute_gradients / apply_gradients).

One training step is forward, loss, backward, update with the weights on the device; only
the scalar loss and the batch's predicted class ids cross to the host.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np

from . import losses as L
from . import metrics as M
from . import optimizers as O
from ._data import as_targets, as_x, split_dataset
from .callbacks import CallbackList, History, ProgressBar
from .errors import ConfigError, DataError, ModelError, ShapeError, TrainingError

log = logging.getLogger(__name__)


def _device(be, a: np.ndarray):
    """Host batch -> device array; the numpy backend uses the host array as is."""
    return a if be.kind == "numpy" else be.asarray(a, dtype=a.dtype)


def _warn_if_sorted(y_train: np.ndarray, y_val: np.ndarray, split: float) -> None:
    """validation_split takes the *last* samples (Keras); warn when that looks like a
    label-sorted dataset (the held-out part lacks classes the training part has)."""
    if y_train.ndim > 2 or (y_train.ndim == 2 and y_train.shape[1] < 2):
        return
    ids_t, ids_v = set(np.unique(M.class_ids(y_train))), set(np.unique(M.class_ids(y_val)))
    if len(ids_v) < len(ids_t) and len(y_val) >= 2 * len(ids_t):
        log.warning("validation_split=%s holds out the LAST %d samples (as Keras does); they "
                    "contain only classes %s of %s. If the data is sorted by label, shuffle it "
                    "first or use Dataset.split(..., stratify=True).", split, len(y_val),
                    sorted(int(i) for i in ids_v), sorted(int(i) for i in ids_t))


def _int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}. Received: {name}={v!r}")
    return int(v)


class TrainingMixin:
    """Mixed into Sequential; see mao_lab.model for the structural half."""

    def _init_training(self) -> None:
        self.optimizer: O.Optimizer | None = None
        self.loss: L.Loss | None = None
        self.metrics: list = []
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        self._keys: list = []  # (key "layer/param", layer, param name), trainable order
        self._fused = False
        self._carry: dict[str, str] | None = None
        # Steps and edits take this lock: an edit from another thread (a widget while fit
        # runs in the background) lands between two steps, never inside one.
        self._lock = threading.RLock()
        self.training = False

    # ---- compile --------------------------------------------------------------------------
    def _loss_problem(self, loss: L.Loss | None, layers) -> str | None:
        """Why ``loss`` cannot train ``layers`` (None when it can)."""
        if loss is None or not loss.softmax_ce or not layers:
            return None
        last = layers[-1]
        act = getattr(last, "activation", "linear")
        if loss.from_logits and act == "softmax":
            return (f"{loss.name} with from_logits=True expects raw scores, but the last layer "
                    f"{last.name!r} ends in a softmax; drop the softmax or use from_logits=False")
        if not loss.from_logits and act != "softmax":
            return (f"{loss.name} expects probabilities from a softmax last layer, but "
                    f"{last.name!r} ({type(last).__name__}) has activation {act!r}; use "
                    f"activation='softmax' there or {type(loss).__name__}(from_logits=True)")
        return None

    def compile(self, optimizer: str | O.Optimizer = "sgd", loss: str | L.Loss = "mse",
                metrics=("accuracy",), backend=None) -> None:
        """Choose optimizer, loss and metrics (and optionally the device).

        Raises ConfigError for unknown names, e.g. "unknown loss 'foo'; expected one of ...".
        """
        opt, lo, mets = O.get(optimizer), L.get(loss), M.get(list(metrics or []))
        problem = self._loss_problem(lo, self.layers)
        if problem:
            raise ConfigError(problem)
        if backend is not None:
            self.to(backend)
        self.optimizer, self.loss, self.metrics = opt, lo, mets
        self.compiled = True
        self._wire_training()
        self._notify("compile", config=self.get_compile_config())

    def get_compile_config(self) -> dict[str, Any]:
        self._require_compiled("get_compile_config")
        return {"optimizer": O.serialize(self.optimizer), "loss": L.serialize(self.loss),
                "metrics": [m.name for m in self.metrics]}

    def compile_from_config(self, config: dict[str, Any]) -> None:
        self.compile(optimizer=config["optimizer"], loss=config["loss"],
                     metrics=config.get("metrics", ()))

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise ModelError(f"{what}: model {self.name!r} must be compiled first: call "
                             "model.compile(optimizer=..., loss=..., metrics=[...])")

    def _wire_training(self) -> None:
        built = self.built
        self._keys = [(f"{la.name}/{n}", la, n) for la in self.layers for n in la.params] \
            if built else []
        self._fused = bool(self.loss is not None and self.loss.softmax_ce and self.layers
                           and getattr(self.layers[-1], "activation", None) == "softmax")
        if self.optimizer is not None and built:
            self.optimizer.build(self.backend, [(k, la.params[n]) for k, la, n in self._keys],
                                 carry=self._carry)
        self._carry = None

    # ---- one step ---------------------------------------------------------------------------
    def _forward(self, x, training: bool, logits: bool = False):
        """Forward through every layer; a Conv2D followed by a MaxPool2D runs as one fused
        backend op where the backend has it (``Conv2D.fuses_with``); ``self._pooled``
        records those pairs for the backward."""
        layers, pooled = self.layers, set()
        last, i = len(layers) - 1, 0
        while i <= last:
            la = layers[i]
            if i < last and type(la).__name__ == "Conv2D" and la.fuses_with(layers[i + 1]):
                x = la.forward_pooled(x, layers[i + 1], training)
                pooled.add(i + 1)
                i += 2
                continue
            x = la.forward(x, training, logits=True) if logits and i == last else \
                la.forward(x, training)
            i += 1
        self._pooled = pooled
        return x

    def _backward(self, dy) -> None:
        """Backward through the layers of the last ``_forward`` (fused pairs as one)."""
        layers, pooled = self.layers, self._pooled
        i = len(layers) - 1
        while i >= 0 and dy is not None:  # None: the layers below have no weights
            if i in pooled:
                dy = layers[i - 1].backward_pooled(dy)
                i -= 2
            else:
                dy = layers[i].backward(dy)
                i -= 1

    def _loss_and_grads(self, xb: np.ndarray, yb: np.ndarray, want_ids: bool = False):
        """Forward, loss and backward of one host batch, enqueued with a single wait at the
        end; returns (loss, predicted class ids on the host or None)."""
        be = self.backend
        for la in self.layers:
            la.zero_grads()
        out = self._forward(_device(be, xb), True, logits=self._fused)
        total, scale, dy = self.loss(be, out, _device(be, yb), logits=self._fused)
        self._backward(dy)
        ids = self._device_ids(out) if want_ids else None
        loss = float(be.to_host(total)) * scale  # the one wait of the step
        return loss, (self._host_ids(ids) if want_ids else None)

    def _update(self) -> None:
        self.optimizer.apply(self.backend, [(k, la.params[n], la.grads[n])
                                            for k, la, n in self._keys])

    def _device_ids(self, out):
        """Enqueue the class-id reduction of ``out`` (argmax, or the output itself if K=1)."""
        if len(out.shape) == 2 and out.shape[1] > 1:
            return self.backend.argmax(out, 1)
        return out

    def _host_ids(self, dev_ids) -> np.ndarray:
        a = np.asarray(self.backend.to_host(dev_ids))
        return a if a.ndim == 1 else M.class_ids(a)

    def _predicted_ids(self, out) -> np.ndarray:
        return self._host_ids(self._device_ids(out))

    def _train_step(self, xb, yb, labels, mets):
        with self._lock:
            loss, ids = self._loss_and_grads(xb, yb, want_ids=bool(mets))
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss}")
            self._update()  # enqueued; the next step's work queues behind it
        for m in mets:
            m.update(ids, labels)
        return loss

    # ---- public training API ----------------------------------------------------------------
    def _prepare_xy(self, x, y, what: str, seed: int | None = None):
        x, y = split_dataset(x, y, what)
        if not self.built:
            if self.seed is None and seed is not None:
                self._rng = np.random.default_rng(seed)
            xs = np.shape(x)
            if len(xs) < 2:
                raise ShapeError(f"{what}: x must have a batch dimension, (N, ...); received "
                                 f"shape {xs}")
            self.build(xs[1:])
        xh = as_x(x, self.input_shape, what)
        if y is None:
            raise ConfigError(f"{what}: y (the targets) is required unless x is a Dataset")
        yh = as_targets(y, len(xh), self.loss, self.output_shape, what)
        return xh, yh

    def fit(self, x, y=None, batch_size: int = 32, epochs: int = 1, validation_data=None,
            validation_split: float = 0.0, shuffle: bool = True, seed: int | None = None,
            callbacks=None, verbose: int = 1, cluster=None, **distributed_kwargs) -> History:
        """Train; returns the History (also ``model.history``).

        ``x`` may be a mao_lab.data.Dataset (then y=None), or any iterable of (x, y) batches
        such as ``mao_lab.data.streaming.scan(...)`` for data larger than memory (then
        batch_size, shuffle and validation_split do not apply). ``validation_split`` holds out the
        *last* fraction of the samples, before shuffling (as Keras). ``cluster=`` hands the
        run to mao_lab.distributed.DataParallel. A non-finite loss stops training with a
        TrainingError; the update of that step is not applied, and if earlier weights went
        non-finite the weights from the start of the epoch are restored.
        """
        if cluster is not None:
            from .distributed import DataParallel

            return DataParallel(self, cluster, **distributed_kwargs).fit(
                x, y, batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                validation_split=validation_split, shuffle=shuffle, seed=seed,
                callbacks=callbacks, verbose=verbose)
        if distributed_kwargs:
            raise ConfigError(f"fit: unexpected arguments {sorted(distributed_kwargs)} (they "
                              "are only accepted together with cluster=)")
        self._require_compiled("fit")
        bs, epochs = _int("batch_size", batch_size, 1), _int("epochs", epochs, 1)
        if verbose not in (0, 1, 2):
            raise ConfigError(f"fit: verbose must be 0, 1 or 2. Received: verbose={verbose!r}")
        if isinstance(validation_split, bool) or not (0.0 <= validation_split < 1.0):
            raise ConfigError(f"fit: validation_split must be in [0, 1). Received: "
                              f"validation_split={validation_split!r}")
        from ._fit_stream import is_stream

        stream = is_stream(x)
        if stream and (y is not None or validation_split):
            raise ConfigError("fit: x is a stream of (x, y) batches, so pass y=None and use "
                              "validation_data instead of validation_split")
        xh, yh = (None, None) if stream else self._prepare_xy(x, y, "fit", seed)
        val = None
        if validation_data is not None:
            vx, vy = (validation_data, None) if hasattr(validation_data, "batches") else \
                tuple(validation_data) if isinstance(validation_data, (tuple, list)) and len(
                    validation_data) == 2 else (None, None)
            if vx is None:
                raise ConfigError("fit: validation_data must be (x_val, y_val) or a Dataset")
            val = self._prepare_xy(vx, vy, "fit(validation_data)")
        elif validation_split:
            cut = int(len(xh) * (1.0 - validation_split))
            if cut < 1 or cut >= len(xh):
                raise ConfigError(f"fit: validation_split={validation_split} of {len(xh)} "
                                  "samples leaves no training or no validation samples")
            xh, yh, val = xh[:cut], yh[:cut], (xh[cut:], yh[cut:])
            _warn_if_sorted(yh, val[1], validation_split)
        if stream:
            from ._fit_stream import fit_stream

            return fit_stream(self, x, epochs, val, callbacks, verbose)
        return self._fit_loop(xh, yh, val, bs, epochs, shuffle, seed, callbacks, verbose)

    def _fit_loop(self, xh, yh, val, bs, epochs, shuffle, seed, callbacks, verbose):
        n = len(xh)
        labels = M.class_ids(yh) if self.metrics else None
        rng = np.random.default_rng(seed if seed is not None else int(self._rng.integers(2**62)))
        permute = rng.permutation if shuffle else None

        def batches(epoch: int):
            order = permute(n) if permute is not None else None
            return _array_batches(xh, yh, labels, bs, steps, order)

        steps = -(-n // bs)
        return self._train_loop(batches, epochs, steps, n, val, callbacks, verbose)

    def _train_loop(self, batches, epochs: int, steps, samples, val, callbacks,
                    verbose: int) -> History:
        """The epochs of a fit: ``batches(epoch)`` gives that epoch's host batches (arrays
        or a stream); callbacks, history, progress bars and stop_training handled here."""
        history = History()
        cbs = [history] + ([ProgressBar(verbose)] if verbose else []) + list(callbacks or [])
        cl = CallbackList(cbs, self)
        self.stop_training = False
        self.history = history
        cl.call("on_train_begin", {"epochs": epochs, "steps": steps, "samples": samples})
        self.training = True
        try:
            with self.backend.compute_scope():
                for epoch in range(epochs):
                    self._run_epoch(cl, epoch, batches(epoch), val)
                    if self.stop_training:
                        break
        except BaseException:
            for c in cbs:  # close progress bars; history keeps the finished epochs
                if isinstance(c, ProgressBar):
                    c.on_train_end({})
            raise
        finally:
            self.training = False
        cl.call("on_train_end", {})
        return history

    def _run_epoch(self, cl, epoch: int, batches, val) -> None:
        """One epoch over ``batches``, an iterable of host (x, y, class ids or None)
        batches (arrays or a stream): callbacks, metrics, divergence handling."""
        cl.call("on_epoch_begin", epoch, {})
        for m in self.metrics:
            m.reset()
        snapshot, seen, loss_sum = None, 0, 0.0
        for b, (xb, yb, lb) in enumerate(batches):
            if cl.batch_hooks:
                cl.call("on_batch_begin", b, {"size": len(xb)})
            if snapshot is None:  # restored if the weights go non-finite this epoch
                snapshot = self.get_weights()
            try:
                loss = self._train_step(xb, yb, lb, self.metrics)
            except TrainingError as exc:
                self._diverged(exc, epoch, b, snapshot)
            seen += len(xb)
            loss_sum += loss * len(xb)
            if cl.batch_hooks:
                logs = {"loss": loss_sum / seen, "size": len(xb)}
                logs.update({m.name: m.result() for m in self.metrics})
                cl.call("on_batch_end", b, logs)
        if seen == 0:
            raise DataError(f"fit: the batch stream yielded no batches in epoch {epoch + 1}")
        logs = {"loss": loss_sum / seen}
        logs.update({m.name: m.result() for m in self.metrics})
        if val is not None:
            logs.update({f"val_{k}": v for k, v in self._evaluate(*val, 256).items()})
        cl.call("on_epoch_end", epoch, logs)

    def _diverged(self, exc: TrainingError, epoch: int, batch: int, snapshot) -> None:
        weights = self.get_weights()
        finite = all(np.isfinite(w).all() for w in weights)
        if finite or snapshot is None:
            kept = "the weights after the last step with a finite loss were kept"
        else:
            self.set_weights(snapshot)
            kept = (f"the weights had become non-finite, so those from the start of epoch "
                    f"{epoch + 1} were restored")
        raise TrainingError(
            f"training diverged at epoch {epoch + 1}, batch {batch}: {exc} (learning_rate="
            f"{self.optimizer.learning_rate}); {kept}. Lower the learning rate or check the "
            "data scaling.") from None

    def train_on_batch(self, x, y) -> dict[str, float]:
        """One optimizer step on one batch; returns {"loss", metrics...} of that batch."""
        self._require_compiled("train_on_batch")
        xh, yh = self._prepare_xy(x, y, "train_on_batch")
        for m in self.metrics:
            m.reset()
        labels = M.class_ids(yh) if self.metrics else None
        try:
            with self.backend.compute_scope():
                loss = self._train_step(xh, yh, labels, self.metrics)
        except TrainingError as exc:
            raise TrainingError(f"train_on_batch: {exc}; the update was not applied") from None
        return {"loss": loss, **{m.name: m.result() for m in self.metrics}}

    def _evaluate(self, xh, yh, batch_size: int) -> dict[str, float]:
        with self.backend.compute_scope():
            return self._evaluate_batches(xh, yh, batch_size)

    def _evaluate_batches(self, xh, yh, batch_size: int) -> dict[str, float]:
        be, total, mets = self.backend, 0.0, M.get([m.name for m in self.metrics])
        labels = M.class_ids(yh) if mets else None
        for s in range(0, len(xh), batch_size):
            xb, yb = xh[s:s + batch_size], yh[s:s + batch_size]
            out = self._forward(_device(be, np.ascontiguousarray(xb)), False,
                                logits=self._fused)
            t, scale, _ = self.loss(be, out, _device(be, np.ascontiguousarray(yb)),
                                    logits=self._fused, grad=False)
            total += float(be.to_host(t)) * scale * len(xb)
            if mets:
                ids = self._predicted_ids(out)
                for m in mets:
                    m.update(ids, labels[s:s + batch_size])
        return {"loss": total / len(xh), **{m.name: m.result() for m in mets}}

    def evaluate(self, x, y=None, batch_size: int = 256) -> dict[str, float]:
        """Loss and metrics over (x, y) (or a Dataset), batch-size weighted like Keras."""
        self._require_compiled("evaluate")
        xh, yh = self._prepare_xy(x, y, "evaluate")
        return self._evaluate(xh, yh, _int("batch_size", batch_size, 1))

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Model outputs (after the last activation, e.g. softmax probabilities) on the host."""
        x, _ = split_dataset(x, None, "predict")
        self._require_built("predict")
        xh = as_x(x, self.input_shape, "predict")
        bs, be = _int("batch_size", batch_size, 1), self.backend
        with be.compute_scope():
            outs = [np.array(be.to_host(self._forward(_device(be, xh[s:s + bs]), False)))
                    for s in range(0, len(xh), bs)]
        return np.concatenate(outs) if outs else np.zeros((0,) + self.output_shape, np.float32)

    # ---- gradients for data-parallel training ---------------------------------------------------
    def compute_gradients(self, x, y) -> tuple[float, list[np.ndarray]]:
        """(mean loss over this batch, host gradients of that loss in
        ``trainable_weight_names()`` order). Does not change the weights."""
        self._require_compiled("compute_gradients")
        xh, yh = self._prepare_xy(x, y, "compute_gradients")
        loss, _ = self._loss_and_grads(xh, yh)
        be = self.backend
        return loss, [np.array(be.to_host(la.grads[n])) for _, la, n in self._keys]

    def apply_gradients(self, grads: list[np.ndarray]) -> None:
        """One optimizer step with host gradients (``trainable_weight_names()`` order)."""
        self._require_compiled("apply_gradients")
        if len(grads) != len(self._keys):
            raise ShapeError(f"apply_gradients: expected {len(self._keys)} gradients "
                             f"({[k for k, _, _ in self._keys]}); received {len(grads)}")
        be, staged = self.backend, []
        for (key, la, n), g in zip(self._keys, grads):
            g = np.asarray(g, dtype=np.float32)
            if tuple(g.shape) != tuple(la.params[n].shape):
                raise ShapeError(f"apply_gradients: {key} expects shape "
                                 f"{tuple(la.params[n].shape)}; received {tuple(g.shape)}")
            staged.append((la, n, be.asarray(g)))
        for la, n, g in staged:
            la.grads[n] = g
        self._update()


    def _apply_flat_gradients(self, flat: np.ndarray, scale: float) -> None:
        """One optimizer step with ``scale`` times the gradients packed one after another in
        the float32 vector ``flat`` (``trainable_weight_names()`` order; extra entries
        after them are ignored). The MPI step's path: one pass from the reduced buffer into
        the gradient arrays, no per-array host copies."""
        sizes = [int(np.prod(la.params[n].shape)) for _, la, n in self._keys]
        if flat.ndim != 1 or flat.size < sum(sizes):
            raise ShapeError(f"_apply_flat_gradients: need a vector of at least {sum(sizes)} "
                             f"gradient entries; received shape {tuple(flat.shape)}")
        be, i, s32 = self.backend, 0, np.float32(scale)
        for (_, la, n), size in zip(self._keys, sizes):
            part = flat[i:i + size].reshape(la.params[n].shape)
            g = la.grads[n]
            if be.kind == "numpy" and g.dtype == np.float32 and g.flags.c_contiguous:
                np.multiply(part, s32, out=g)
            else:
                la.grads[n] = be.asarray(part * s32)
            i += size
        self._update()


def _array_batches(xh, yh, labels, bs: int, steps: int, order):
    """(x, y, class ids) batches of in-memory arrays, in ``order`` (a permutation) or as stored."""
    n = len(xh)
    for b in range(steps):
        sl = slice(b * bs, min(n, (b + 1) * bs))
        if order is None:
            yield xh[sl], yh[sl], labels[sl] if labels is not None else None
        else:
            idx = order[sl]
            yield (xh.take(idx, axis=0), yh.take(idx, axis=0),
                   labels.take(idx) if labels is not None else None)
