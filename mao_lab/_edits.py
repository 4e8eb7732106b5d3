"""Sequential's live edits: edit, insert, remove, replace, widen_dense (Net2Net) and undo.

Every edit builds the candidate layer list and infers its shapes *before* touching the
model: layers whose input shape is unchanged are reused as they are (weights and optimizer
state kept); layers that must be rebuilt keep every weight whose name and shape did not
change; anything else is initialized. Any failure raises EditError and leaves the model
exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import ConfigError, EditError, ModelError, ShapeError
from .layers import Dense, Dropout, Layer
from .layers.activation import Activation

_UNDO_DEPTH = 20


class EditsMixin:
    """Mixed into Sequential; events: "edit", "insert", "remove", "replace", "undo"."""

    def _edit_index(self, layer, kind: str) -> int:
        try:
            return self._index(layer)
        except ModelError as exc:
            raise EditError(f"{kind} refused: {exc}; the model is unchanged") from None

    def _check_new(self, layer, kind: str, replacing: Layer | None = None) -> None:
        if not isinstance(layer, Layer):
            raise EditError(f"{kind} refused: expected a mao_lab.layers.Layer; received "
                            f"{type(layer).__name__}; the model is unchanged")
        if any(la is layer for la in self.layers):
            raise EditError(f"{kind} refused: layer {layer.name!r} is already in the model; "
                            "the model is unchanged")
        if any(la.name == layer.name and la is not replacing for la in self.layers):
            raise EditError(f"{kind} refused: a layer named {layer.name!r} already exists; "
                            "pass a different name=; the model is unchanged")

    # ---- the public edits ---------------------------------------------------------------------
    def edit(self, layer: Layer | str | int, **config) -> Layer:
        """Change hyperparameters of one layer, e.g. ``model.edit("dense", units=64)``."""
        i = self._edit_index(layer, "edit")
        old = self.layers[i]
        cfg = old.get_config()
        unknown = sorted(set(config) - set(cfg))
        if unknown:
            raise EditError(f"edit refused: {type(old).__name__} {old.name!r} has no option "
                            f"{', '.join(map(repr, unknown))}; options: {sorted(cfg)}; the model "
                            "is unchanged")
        if "name" in config and any(la.name == config["name"] and la is not old
                                    for la in self.layers):
            raise EditError(f"edit refused: a layer named {config['name']!r} already exists; "
                            "the model is unchanged")
        try:
            new = type(old).from_config({**cfg, **config})
        except ConfigError as exc:
            raise EditError(f"edit of {old.name!r} refused: {exc}; the model is unchanged") \
                from None
        cand = self.layers[:i] + [new] + self.layers[i + 1:]
        self._commit(cand, {id(new): old}, "edit", index=i, layer=new.name, changes=config)
        return new

    def insert(self, index: int, layer: Layer) -> None:
        """Insert ``layer`` before position ``index`` (``len(model.layers)`` appends)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
                0 <= index <= len(self.layers)):
            raise EditError(f"insert refused: index must be an int in [0, {len(self.layers)}]; "
                            f"received {index!r}; the model is unchanged")
        self._check_new(layer, "insert")
        cand = self.layers[:index] + [layer] + self.layers[index:]
        self._commit(cand, {}, "insert", index=int(index), layer=layer.name)

    def remove(self, layer: Layer | str | int) -> Layer:
        """Remove one layer; returns it."""
        i = self._edit_index(layer, "remove")
        if len(self.layers) == 1:
            raise EditError("remove refused: it is the model's only layer; the model is "
                            "unchanged")
        old = self.layers[i]
        self._commit(self.layers[:i] + self.layers[i + 1:], {}, "remove", index=i,
                     layer=old.name)
        return old

    def replace(self, layer: Layer | str | int, new_layer: Layer) -> None:
        """Put ``new_layer`` (freshly initialized) where ``layer`` is."""
        i = self._edit_index(layer, "replace")
        old = self.layers[i]
        self._check_new(new_layer, "replace", replacing=old)
        cand = self.layers[:i] + [new_layer] + self.layers[i + 1:]
        self._commit(cand, {}, "replace", index=i, layer=new_layer.name, old=old.name)

    def widen_dense(self, layer: Layer | str | int, units: int,
                    preserve_function: bool = True) -> Layer:
        """Give a Dense layer more units. With ``preserve_function`` (Net2Net, Chen et al.
        2016) new units copy random existing ones and the next Dense divides their outgoing
        weights by the copy counts, so predictions are unchanged."""
        i = self._edit_index(layer, "widen_dense")
        old = self.layers[i]
        if not isinstance(old, Dense):
            raise EditError(f"widen_dense refused: {old.name!r} is a {type(old).__name__}, not "
                            "a Dense layer; the model is unchanged")
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or (
                units <= old.units):
            raise EditError(f"widen_dense refused: units must be an int larger than the "
                            f"current {old.units}; received {units!r}; the model is unchanged")
        j = self._absorber(i) if preserve_function else None
        n = old.units
        g = np.concatenate([np.arange(n), self._rng.integers(0, n, int(units) - n)])
        counts = np.bincount(g, minlength=n).astype(np.float32)
        new = type(old).from_config({**old.get_config(), "units": int(units)})

        def fill(final: list[Layer]) -> None:
            if not self.built:
                return
            be = self.backend
            w = np.asarray(be.to_host(old.params["kernel"]))
            nw = np.asarray(be.to_host(final[i].params["kernel"])).copy()
            nw[:, :] = w[:, g] if preserve_function else nw
            nw[:, :n] = w
            final[i].params["kernel"] = be.asarray(nw)
            if old.use_bias:
                b = np.asarray(be.to_host(old.params["bias"]))
                nb = np.asarray(be.to_host(final[i].params["bias"])).copy()
                nb[:] = b[g] if preserve_function else nb
                nb[:n] = b
                final[i].params["bias"] = be.asarray(nb)
            k = j if j is not None else i + 1
            if k < len(final) and isinstance(final[k], Dense):
                w2 = np.asarray(be.to_host(self.layers[k].params["kernel"]))
                nw2 = np.asarray(be.to_host(final[k].params["kernel"])).copy()
                if preserve_function:
                    nw2[:, :] = w2[g, :] / counts[g][:, None]
                else:
                    nw2[:n] = w2
                final[k].params["kernel"] = be.asarray(nw2)

        cand = self.layers[:i] + [new] + self.layers[i + 1:]
        self._commit(cand, {id(new): old}, "edit", fill=fill, index=i, layer=new.name,
                     changes={"units": int(units)}, preserve_function=bool(preserve_function))
        return new

    def _absorber(self, i: int) -> int:
        """Index of the Dense layer that absorbs widened unit i (through elementwise layers)."""
        if self.layers[i].activation == "softmax":
            raise EditError("widen_dense refused: preserve_function cannot widen a softmax "
                            "layer (the normalization couples its units); the model is unchanged")
        for j in range(i + 1, len(self.layers)):
            la = self.layers[j]
            if isinstance(la, Dense):
                return j
            if isinstance(la, Dropout) or (isinstance(la, Activation)
                                           and la.activation != "softmax"):
                continue
            break
        raise EditError(f"widen_dense refused: preserve_function needs a Dense layer after "
                        f"{self.layers[i].name!r} (through Activation/Dropout only) to absorb "
                        "the new units; pass preserve_function=False; the model is unchanged")

    def undo(self) -> None:
        """Revert the last edit (layers, their weights at edit time, optimizer state)."""
        with self._lock:
            self._undo_locked()

    def _undo_locked(self) -> None:
        if not self._undo:
            raise EditError("undo: there is no edit to undo")
        if self.training and self._undo[-1]["layers"][-1].output_shape != (
                self.layers[-1].output_shape):
            raise EditError("undo refused while fit is running: it would change the output "
                            "shape; the model is unchanged")
        rec = self._undo.pop()
        self.layers = rec["layers"]
        if self.optimizer is not None and self.optimizer is rec["optimizer"]:
            self.optimizer.slots = rec["slots"]
        self._carry = {f"{la.name}/{n}": f"{la.name}/{n}" for la in self.layers
                       for n in la.params}
        self._structure_changed()
        self._notify("undo", reverted=rec["kind"])

    # ---- the one commit path ----------------------------------------------------------------
    def _commit(self, cand: list[Layer], origins: dict[int, Layer], kind: str,
                fill: Callable[[list[Layer]], None] | None = None, **info) -> None:
        with self._lock:  # between two training steps when fit runs in another thread
            self._commit_locked(cand, origins, kind, fill, **info)

    def _commit_locked(self, cand, origins, kind, fill, **info) -> None:
        names = [la.name for la in cand]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise EditError(f"{kind} refused: duplicate layer names {dup}; the model is "
                            "unchanged")
        current = {id(la) for la in self.layers}
        final, carry = [], {}
        if self.input_shape is None:
            final = list(cand)
        else:
            shape = self.input_shape
            for la in cand:
                src = origins.get(id(la))
                reuse = (id(la) in current and la.built and la.be is self.backend
                         and tuple(la.input_shape) == tuple(shape))
                if reuse:
                    fresh = la
                    carry.update({f"{la.name}/{n}": f"{la.name}/{n}" for n in la.params})
                else:
                    if id(la) in current:
                        src, fresh = la, type(la).from_config(la.get_config())
                    else:
                        fresh = la
                    try:
                        self._prepare(fresh, shape)
                    except (ShapeError, ConfigError) as exc:
                        raise EditError(f"{kind} refused: {exc}; the model is unchanged") \
                            from None
                    if src is not None:
                        carry.update(self._keep_weights(src, fresh))
                final.append(fresh)
                shape = fresh.output_shape
        problem = self._loss_problem(self.loss, final)
        if problem:
            raise EditError(f"{kind} refused: {problem}; the model is unchanged")
        if self.training and final and self.layers and (
                final[-1].output_shape != self.layers[-1].output_shape):
            raise EditError(f"{kind} refused while fit is running: it would change the output "
                            f"shape from {self.layers[-1].output_shape} to "
                            f"{final[-1].output_shape}, which the targets no longer fit; the "
                            "model is unchanged")
        if fill is not None:
            fill(final)
        self._undo.append({"layers": list(self.layers), "kind": kind, "optimizer": self.optimizer,
                           "slots": dict(self.optimizer.slots) if self.optimizer else None})
        del self._undo[:-_UNDO_DEPTH]
        self.layers = final
        self._carry = carry
        self._structure_changed()
        self._notify(kind, **info)

    def _keep_weights(self, src: Layer, dst: Layer) -> dict[str, str]:
        """Copy src's weights into dst where name and shape agree; the carried keys."""
        be, carry = self.backend, {}
        if src.be is not be:
            return carry
        for d_src, d_dst in ((src.params, dst.params), (src.state, dst.state)):
            for n, a in d_src.items():
                if n in d_dst and tuple(d_dst[n].shape) == tuple(a.shape):
                    d_dst[n] = be.copy(a)
                    if d_src is src.params:
                        carry[f"{dst.name}/{n}"] = f"{src.name}/{n}"
        return carry
