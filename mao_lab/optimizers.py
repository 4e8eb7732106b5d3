"""Optimizers: SGD (momentum, Nesterov, weight decay) and Adam, run in place on the device.

State ("slots": SGD velocity, Adam m and v) is kept per weight under its "layer/param" key,
so live edits keep the state of unchanged layers. The learning rate may change between
steps: ``model.optimizer.learning_rate = 0.01``.

Example:
    >>> import numpy as np
    >>> from mao_lab import get_backend
    >>> be = get_backend("numpy"); p = np.ones(2, np.float32)
    >>> opt = SGD(learning_rate=0.5); opt.build(be, [("d/kernel", p)])
    >>> opt.apply(be, [("d/kernel", p, np.ones(2, np.float32))]); p.tolist()
    [0.5, 0.5]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError, ShapeError


def _number(cls: str, key: str, v: Any, lo: float, hi: float | None = None,
            lo_open: bool = False) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.floating))
    if ok:
        ok = (v > lo if lo_open else v >= lo) and (hi is None or v < hi) and np.isfinite(v)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'})"
        raise ConfigError(f"{cls}: {key} must be a number in {rng}. Received: {key}={v!r}")
    return float(v)


class Optimizer:
    """Base class: slots per weight key, the iteration counter, config and state I/O."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots: dict[str, dict[str, Any]] = {}
        self._be = None  # the backend the slots live on (set by build / to)

    @property
    def learning_rate(self) -> float:
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._lr = _number(type(self).__name__, "learning_rate", value, 0.0, lo_open=True)

    lr = learning_rate

    def active_slots(self) -> tuple[str, ...]:
        return self.slot_names

    def build(self, be, named: list[tuple[str, Any]], carry: dict[str, str] | None = None):
        """(Re)create slots for ``named`` (key, param). A slot is kept when ``carry`` maps the
        key to an old key (identity when carry is None) whose slot has the same shape."""
        self._be = be
        old, new = self.slots, {}
        for key, p in named:
            src = key if carry is None else carry.get(key)
            prev = old.get(src) if src is not None else None
            if prev is not None and all(tuple(a.shape) == tuple(p.shape) for a in prev.values()):
                new[key] = prev
            else:
                new[key] = {s: be.zeros(tuple(p.shape)) for s in self.active_slots()}
        self.slots = new

    def to(self, be, old) -> None:
        """Move every slot from backend ``old`` to backend ``be``."""
        for d in self.slots.values():
            for s, a in d.items():
                d[s] = be.asarray(np.asarray(old.to_host(a)))
        self._be = be

    def apply(self, be, triples) -> None:
        """One step over (key, param, grad) triples, in place."""
        self.iterations += 1
        for key, p, g in triples:
            self._update(be, p, g, self.slots[key])

    def _update(self, be, p, g, slots) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        return cls(**config)

    def get_state(self, be=None) -> list[np.ndarray]:
        """[iterations] + every slot array (weights in model order, slots in slot order)."""
        be = be or self._be
        out = [np.array(self.iterations, dtype=np.int64)]
        for d in self.slots.values():
            for s in self.active_slots():
                a = d[s]
                out.append(np.array(be.to_host(a) if be is not None else a))
        return out

    def state_names(self) -> list[str]:
        """Names of ``get_state``'s arrays: "iterations", then "<layer>/<param>/<slot>"."""
        return ["iterations"] + [f"{k}/{s}" for k in self.slots for s in self.active_slots()]

    def set_state(self, state: list[np.ndarray], be=None) -> None:
        """Inverse of ``get_state``; shapes must match (ShapeError names the slot)."""
        be = be or self._be
        names = self.state_names()
        if len(state) != len(names):
            raise ShapeError(f"{type(self).__name__}.set_state: expected {len(names)} arrays "
                             f"({names[:4]}...); received {len(state)}")
        arrays = []
        for n, a in zip(names[1:], state[1:]):
            k, s = n.rsplit("/", 1)
            want = tuple(self.slots[k][s].shape)
            if tuple(np.shape(a)) != want:
                raise ShapeError(f"optimizer state {n}: expected shape {want}; received "
                                 f"{tuple(np.shape(a))}")
            arrays.append((k, s, a))
        self.iterations = int(np.asarray(state[0]))
        for k, s, a in arrays:
            host = np.asarray(a, dtype=np.float32)
            self.slots[k][s] = be.asarray(host) if be is not None else host.copy()


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch semantics: v = m*v + g; p -= lr * v
    (Nesterov: p -= lr * (g + m*v)); ``weight_decay`` adds ``wd * p`` to g."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(learning_rate)
        self.momentum = _number("SGD", "momentum", momentum, 0.0, 1.0)
        if nesterov not in (True, False):
            raise ConfigError(f"SGD: nesterov must be a bool. Received: nesterov={nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ConfigError("SGD: nesterov=True needs momentum > 0. Received: momentum=0.0")
        self.nesterov = bool(nesterov)
        self.weight_decay = _number("SGD", "weight_decay", weight_decay, 0.0)

    def active_slots(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def apply(self, be, triples) -> None:
        many = getattr(be, "sgd_update_many", None)  # a backend that batches launches
        if many is None:
            return super().apply(be, triples)
        self.iterations += 1
        many([p for _, p, _ in triples], [g for _, _, g in triples],
             [self.slots[k].get("velocity") for k, _, _ in triples], lr=self._lr,
             momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay)

    def _update(self, be, p, g, slots) -> None:
        be.sgd_update(p, g, slots.get("velocity"), lr=self._lr, momentum=self.momentum,
                      nesterov=self.nesterov, weight_decay=self.weight_decay)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; Keras defaults (epsilon 1e-7)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.beta_1 = _number("Adam", "beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _number("Adam", "beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _number("Adam", "epsilon", epsilon, 0.0, lo_open=True)

    def _update(self, be, p, g, slots) -> None:
        be.adam_update(p, g, slots["m"], slots["v"], lr=self._lr, beta1=self.beta_1,
                       beta2=self.beta_2, eps=self.epsilon, step=self.iterations)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def get(opt: str | dict | Optimizer) -> Optimizer:
    """An Optimizer from "sgd"/"adam", a ``serialize`` dict or an instance."""
    if isinstance(opt, Optimizer):
        return opt
    if isinstance(opt, dict) and opt.get("class_name") in ("SGD", "Adam"):
        return {"SGD": SGD, "Adam": Adam}[opt["class_name"]].from_config(opt.get("config", {}))
    if isinstance(opt, str) and opt.lower() in OPTIMIZERS:
        return OPTIMIZERS[opt.lower()]()
    raise ConfigError(f"unknown optimizer {opt!r}; expected one of {', '.join(OPTIMIZERS)} or "
                      "a mao_lab.optimizers.Optimizer instance")


def serialize(opt: Optimizer) -> dict[str, Any]:
    return {"class_name": type(opt).__name__, "config": opt.get_config()}
