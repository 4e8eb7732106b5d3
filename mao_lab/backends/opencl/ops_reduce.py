"""ReduceMixin: reduce_sum over any axes and argmax along the last axis (kernels/reduce.cl).

reduce_sum merges adjacent axes into alternating kept/reduced groups and runs one kernel
per reduced group (one for the common cases: (B, N) over 0, NCHW over (0, 2, 3) is two).
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from .ops_launch import f32, i32, nelem

_SPLIT_MIN = 8192  # reductions longer than this with few outputs are split in chunks


def _groups(shape, axes) -> list[list]:
    """[[size, reduced], ...] with adjacent axes of the same kind merged (size-1 dropped)."""
    out: list[list] = []
    for d, s in enumerate(shape):
        if s == 1:
            continue
        red = d in axes
        if out and out[-1][1] == red:
            out[-1][0] *= int(s)
        else:
            out.append([int(s), red])
    return out


class ReduceMixin:
    """Reductions; see NumpyBackend for the specification of each."""

    def _reduce_pass(self, src, dst, o: int, r: int, i: int, beta: float) -> None:
        """dst (o, i) = sum over r of src viewed (o, r, i), + beta * dst."""
        if o * i < 64 and r > _SPLIT_MIN:  # few long sums: chunk them, then sum the chunks
            s = min(256, -(-r // 1024))
            ln = -(-r // s)
            part = self.empty((o, s, i))
            self._launch1("reduce.cl", "reduce_sum", o * s * i,
                          (src, part, i32(o), i32(r), i32(i), i32(s), i32(ln), f32(0.0)))
            src, r = part, s
        self._launch1("reduce.cl", "reduce_sum", o * i,
                      (src, dst, i32(o), i32(r), i32(i), i32(1), i32(max(r, 1)), f32(beta)))

    def reduce_sum(self, x, axis, out=None, beta: float = 0.0):
        """Sum over ``axis`` (int, tuple or None); out = sum + beta * out."""
        x = self._dev(x, "x", "reduce_sum")
        nd = x.ndim
        axes = set()
        if axis is None:
            axis_list = range(nd)
        elif isinstance(axis, (int, np.integer)):
            axis_list = (axis,)
        else:  # a tuple or list (plain, ~10x cheaper than numpy's) or an array of axes
            axis_list = axis if isinstance(axis, (tuple, list)) else np.atleast_1d(axis).tolist()
        for a in axis_list:
            if not -nd <= int(a) < nd:
                raise ShapeError(f"reduce_sum: axis {axis} is out of range for shape "
                                 f"{tuple(x.shape)}")
            axes.add(int(a) % nd)
        shape = tuple(s for d, s in enumerate(x.shape) if d not in axes)
        res = self._out(out, shape, "out", "reduce_sum") if out is not None else self.empty(shape)
        if out is None:
            beta = 0.0
        if nelem(shape) == 0:
            return res
        groups = _groups(x.shape, axes)
        src = x
        while True:
            red = [j for j, g in enumerate(groups) if g[1]]
            if not red:  # nothing (left) to reduce: a copy, or the last pass done
                if src is x:
                    self._reduce_pass(x, res, nelem(shape), 1, 1, beta)
                break
            j = red[-1]
            o = nelem([g[0] for g in groups[:j]])
            i = nelem([g[0] for g in groups[j + 1:]])
            last = len(red) == 1
            dst = res if last else self.empty((o * i,))
            self._reduce_pass(src, dst, o, groups[j][0], i, beta if last else 0.0)
            if last:
                break
            src = dst
            groups = _groups([g[0] for g in groups[:j]] + [g[0] for g in groups[j + 1:]],
                             {k for k, g in enumerate(groups[:j] + groups[j + 1:]) if g[1]})
        return res

    def argmax(self, x, axis: int = -1):
        """Index of the largest value along ``axis`` (int32); kernels for the last axis."""
        x = self._dev(x, "x", "argmax")
        if x.ndim == 0:
            raise ShapeError("argmax: x must have at least one axis; received a 0-d array")
        if axis not in (-1, x.ndim - 1):  # rare: done on the host, same numbers
            return self.asarray(np.argmax(self.to_host(x), axis=axis).astype(np.int32))
        k = int(x.shape[-1])
        rows = x.size // max(k, 1)
        idx = self.empty(tuple(x.shape[:-1]), dtype=np.int32)
        self._launch1("reduce.cl", "argmax", rows, (x, idx, i32(rows), i32(k)))
        return idx
