"""OptimMixin: SGD (momentum, Nesterov, weight decay) and Adam updates, in place, one
kernel each (kernels/optim.cl); ``sgd_update_many`` updates up to 8 tensors per launch.
"""

from __future__ import annotations

from ...errors import ConfigError, ShapeError
from .ops_launch import f32, i32

_MANY = 8  # tensors per sgd_update_many launch (the kernel's argument slots)
_CHUNK = 1024  # elements per work-item (SGD_CHUNK in optim.cl)


class OptimMixin:
    """Optimizer primitives; see NumpyBackend for the specification of each."""

    def _same(self, op, param, **others):
        for k, a in others.items():
            if a is not None and a.shape != param.shape:
                raise ShapeError(f"{op}: '{k}' has shape {tuple(a.shape)} but param has "
                                 f"{tuple(param.shape)}")

    def sgd_update(self, param, grad, velocity=None, *, lr: float, momentum: float = 0.0,
                   nesterov: bool = False, weight_decay: float = 0.0) -> None:
        """In place: v = m*v + g; p -= lr * (g + m*v if nesterov else v)."""
        op = "sgd_update"
        if momentum and velocity is None:
            raise ConfigError("sgd_update: momentum > 0 needs a velocity array")
        self._same(op, param, grad=grad, velocity=velocity)
        p = self._out(param, param.shape, "param", op)
        g = self._dev(grad, "grad", op)
        v = self._out(velocity, param.shape, "velocity", op) if momentum else p
        self._launch1("optim.cl", op, p.size,
                      (p, g, v, i32(p.size), f32(lr), f32(momentum), i32(bool(nesterov)),
                       f32(weight_decay)))

    def sgd_update_many(self, params, grads, velocities=None, *, lr: float,
                        momentum: float = 0.0, nesterov: bool = False,
                        weight_decay: float = 0.0) -> None:
        """In place ``sgd_update`` on every (params[k], grads[k], velocities[k]), up to 8
        tensors per launch: a training step's whole update in one or two launches.

        Example:
            >>> be.sgd_update_many([w, b], [dw, db], [vw, vb],  # doctest: +SKIP
            ...                    lr=0.1, momentum=0.9)
        """
        op = "sgd_update_many"
        velocities = [None] * len(params) if velocities is None else list(velocities)
        scalars = (f32(lr), f32(momentum), i32(bool(nesterov)), f32(weight_decay))
        arrays = (*params, *grads, *velocities, bool(momentum))
        last = self.__dict__.get("_sgd_many_last")
        if last is not None and len(last[0]) == len(arrays) and all(
                a is b for a, b in zip(last[0], arrays)):
            launches = last[1]  # the same arrays as the last step: checked already
        else:
            launches, reusable = self._sgd_many_plan(op, params, grads, velocities, momentum)
            self._sgd_many_last = (arrays, launches) if reusable else None
        for args, end in launches:
            self._launch("optim.cl", op, (end,), (1,), (*args, *scalars))

    def _sgd_many_plan(self, op, params, grads, velocities, momentum):
        """Check every tensor and group them into launches: ([(args, work-items)], whether
        the plan may be reused for the same arrays)."""
        if not len(params) == len(grads) == len(velocities):
            raise ShapeError(f"{op}: params, grads and velocities must have one entry per "
                             f"tensor; received {len(params)}, {len(grads)} and "
                             f"{len(velocities)}")
        items, copied = [], False
        for k, (param, grad, velocity) in enumerate(zip(params, grads, velocities)):
            if momentum and velocity is None:
                raise ConfigError(f"{op}: momentum > 0 needs a velocity array (tensor {k})")
            self._same(op, param, grad=grad, velocity=velocity)
            p = self._out(param, param.shape, "param", op)
            g = self._dev(grad, "grad", op)
            copied |= g is not grad  # an offset view was copied: do not reuse the plan
            v = self._out(velocity, param.shape, "velocity", op) if momentum else p
            if p.size:
                items.append((p, g, v, p.size))
        launches = []
        for k in range(0, len(items), _MANY):
            group, args, end = items[k:k + _MANY], [], 0
            for p, g, v, n in group:
                end += -(-n // _CHUNK)
                args += [p, g, v, i32(n), i32(end)]
            p, g, v, _ = group[-1]
            for _ in range(_MANY - len(group)):  # unused slots: no elements, empty range
                args += [p, g, v, i32(0), i32(end)]
            launches.append((tuple(args), end))
        return launches, not copied

    def adam_update(self, param, grad, m, v, *, lr: float, beta1: float = 0.9,
                    beta2: float = 0.999, eps: float = 1e-7, step: int = 1) -> None:
        """In place Adam with bias correction; ``step`` counts from 1."""
        op = "adam_update"
        if step < 1:
            raise ConfigError(f"adam_update: step counts from 1; received {step}")
        self._same(op, param, grad=grad, m=m, v=v)
        p = self._out(param, param.shape, "param", op)
        g = self._dev(grad, "grad", op)
        m = self._out(m, param.shape, "m", op)
        v = self._out(v, param.shape, "v", op)
        c1 = 1.0 / (1.0 - beta1**step)
        c2 = 1.0 / (1.0 - beta2**step)
        self._launch1("optim.cl", op, p.size,
                      (p, g, m, v, i32(p.size), f32(lr), f32(beta1), f32(beta2), f32(eps),
                       f32(c1), f32(c2)))
