"""OptimMixin: SGD (momentum, Nesterov, weight decay) and Adam updates, in place, one
kernel each (kernels/optim.cl).
"""

from __future__ import annotations

from ...errors import ConfigError, ShapeError
from .ops_launch import f32, i32


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
