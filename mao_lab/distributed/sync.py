"""Gradient and parameter synchronisation: MPI allreduce on engines, parameter server on the client.

Both weight each engine by its local batch size ``n_i``: the global step uses
``sum_i n_i * g_i / sum_i n_i`` where ``g_i`` is the gradient of the *mean* local loss, which
is exactly the gradient of the mean loss over the concatenated global batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ClusterError


def flatten(arrays: Sequence[np.ndarray], scale: float = 1.0, extra: Sequence[float] = (),
            out: np.ndarray | None = None) -> np.ndarray:
    """Concatenate ``scale * arrays`` (float32) followed by the ``extra`` scalars."""
    size = sum(int(a.size) for a in arrays) + len(extra)
    if out is None or out.size != size:
        out = np.empty(size, dtype=np.float32)
    i = 0
    for a in arrays:
        np.multiply(np.asarray(a, dtype=np.float32).ravel(), scale, out=out[i:i + a.size])
        i += a.size
    out[i:] = extra
    return out


def unflatten(buf: np.ndarray, like: Sequence[np.ndarray], scale: float = 1.0) -> list[np.ndarray]:
    """Split ``buf`` back into arrays shaped like ``like``, times ``scale`` (float32)."""
    out, i = [], 0
    for a in like:
        out.append((buf[i:i + a.size] * np.float32(scale)).reshape(a.shape).astype(np.float32))
        i += a.size
    return out


class MPIAllreduce:
    """Engine side: weighted gradient averaging among MPI ranks with one ``Allreduce`` a step.

    The buffer holds ``n_i * g_i``, then ``[n_i, n_i * loss_i]``, then one slot per rank in
    which rank i puts how long it computed since the previous collective ended (the others
    put 0), so the same collective also sums the global batch size and loss and tells every
    rank when each other rank arrived. ``wait`` is the part of the collective spent until
    the last rank arrived (others still computing), ``comm`` the rest. When this host runs
    more ranks than it has cores for them (heterogeneous pinning), waiting ranks yield the
    CPU.
    """

    def __init__(self) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self._send: np.ndarray | None = None
        self._recv: np.ndarray | None = None
        self._left: float | None = None  # when the previous collective returned here
        # More ranks on this host than cores it lets us use: waiting ranks must yield.
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.oversubscribed = local.size > len(os.sched_getaffinity(0))
        local.Free()

    def _sum(self) -> None:
        if self.oversubscribed:
            _finish(self.comm.Iallreduce(self._send, self._recv, op=self.MPI.SUM))
        else:
            self.comm.Allreduce(self._send, self._recv, op=self.MPI.SUM)

    @property
    def rank(self) -> int:
        return self.comm.rank

    def mark_start(self) -> None:
        """A round starts now on every rank (times since then count as computing)."""
        self._left = time.perf_counter()

    def reduce(self, grads: Sequence[np.ndarray], n: int, loss: float
               ) -> tuple[np.ndarray, int, float, float, float]:
        """Sum ``n * grads`` over the ranks: (summed flat buffer, global batch, mean loss,
        wait seconds, comm seconds). The buffer's first entries are ``sum_i n_i g_i`` in
        ``grads`` order (valid until the next call)."""
        size = self.comm.size
        arrive = time.perf_counter()
        computed = arrive - self._left if self._left is not None else 0.0
        slots = [0.0] * size
        slots[self.comm.rank] = computed
        self._send = flatten(grads, float(n), [float(n), float(n) * float(loss)] + slots,
                             self._send)
        if self._recv is None or self._recv.size != self._send.size:
            self._recv = np.empty_like(self._send)
        self._sum()
        self._left = time.perf_counter()
        spent = self._left - arrive
        wait = 0.0
        if computed > 0.0:  # the last rank to arrive computed longest since the last sum
            wait = min(max(float(self._recv[-size:].max()) - computed, 0.0), spent)
        total = int(round(float(self._recv[-size - 2])))
        return self._recv, total, float(self._recv[-size - 1]) / max(total, 1), wait, \
            spent - wait

    def __call__(self, grads: Sequence[np.ndarray], n: int, loss: float
                 ) -> tuple[list[np.ndarray], int, float, float, float]:
        """Returns (averaged grads, global batch, mean loss, wait seconds, comm seconds)."""
        buf, total, mean_loss, wait, comm = self.reduce(grads, n, loss)
        if total <= 0:
            return [np.zeros_like(g) for g in grads], 0, 0.0, wait, comm
        return unflatten(buf, grads, 1.0 / total), total, mean_loss, wait, comm


def _finish(request: Any, spin: int = 200, yield_for: float = 0.005) -> None:
    """Complete a non-blocking MPI request, giving the CPU away while it waits.

    MPI implementations busy-poll in blocking collectives; on a machine where engines share
    cores (heterogeneous pinning, more engines than cores) a spinning rank steals the core
    from the rank it waits for. A non-blocking collective progresses only while its ranks
    call into MPI, so a rank must neither spin nor sleep long: spin briefly (low latency
    when all are ready), then test and ``sched_yield`` (a core-mate that computes or
    waits runs at once; sleeping instead cost 4-8 ms per allreduce with two ranks on one
    core), and only after ``yield_for`` seconds poll with short sleeps.
    """
    for _ in range(spin):
        if request.Test():
            return
    end = time.perf_counter() + yield_for
    while time.perf_counter() < end:
        if request.Test():
            return
        os.sched_yield()
    while not request.Test():
        time.sleep(100e-6)


def weighted_gradient(results: dict[int, dict[str, Any]]) -> tuple[list[np.ndarray], int, float]:
    """Client side (parameter server): average ``grad_sum`` of engines weighted by ``n``.

    Each result carries ``grad_sum`` (= n_i * g_i, float32 arrays), ``n`` and ``loss_sum``.
    Sums in float64 in engine-id order, so the result does not depend on arrival order.
    """
    parts = [results[e] for e in sorted(results) if results[e]["n"] > 0]
    if not parts:
        raise ClusterError("no engine processed any sample in this round")
    total = sum(int(p["n"]) for p in parts)
    grads = []
    for k in range(len(parts[0]["grad_sum"])):
        acc = np.zeros(parts[0]["grad_sum"][k].shape, dtype=np.float64)
        for p in parts:
            acc += p["grad_sum"][k]
        grads.append((acc / total).astype(np.float32))
    return grads, total, sum(float(p["loss_sum"]) for p in parts) / total


def weighted_weights(results: dict[int, dict[str, Any]]) -> tuple[list[np.ndarray], int, float]:
    """Client side (local SGD): average engines' weights weighted by samples processed."""
    parts = [results[e] for e in sorted(results) if results[e]["n"] > 0]
    if not parts:
        raise ClusterError("no engine processed any sample in this round")
    total = sum(int(p["n"]) for p in parts)
    out = []
    for k in range(len(parts[0]["weights"])):
        acc = np.zeros(parts[0]["weights"][k].shape, dtype=np.float64)
        for p in parts:
            acc += p["n"] * np.asarray(p["weights"][k], dtype=np.float64)
        out.append((acc / total).astype(np.float32))
    return out, total, sum(float(p["loss_sum"]) for p in parts) / total
