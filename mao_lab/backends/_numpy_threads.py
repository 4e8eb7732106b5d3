"""Splitting one numpy-backend op over the cores (fork-join), BLAS at one thread per part.

OpenBLAS threads one GEMM by itself, but on the shapes a training step has (64 rows
against a 784x300 weight matrix) its threads cost more than they save, and everything
around the GEMMs (bias, activation, the optimizer update) runs on one core. So when
numpy's BLAS is set to n > 1 threads (threadpoolctl, ``OPENBLAS_NUM_THREADS``...), the
backend cuts such an op into n parts itself: part 0 on the calling thread, the others on
persistent worker threads, with BLAS switched to one thread while the parts run (BLAS
calls, numpy's large loops and ctypes release the GIL, so the parts run at once).

``parts(work)`` says how many parts an op of ``work`` elementary steps gets (1: do not
split); ``run(fn, n)`` calls ``fn(0) .. fn(n - 1)`` that way and returns when all are done,
re-raising the first exception. Only one split region runs at a time in a process; a
split requested inside one, or while another thread holds one, runs unsplit on its
caller (so nesting never deadlocks). ``MAO_LAB_NUMPY_THREADS`` overrides the thread count
(``1`` turns splitting off).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

# An op is split only above this much work (multiply-adds or elements moved): below it a
# hand-off (~10 us) costs more than half the op saves.
MIN_WORK = 1 << 20
MAX_PARTS = 8


class _Worker:
    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="mao_lab-numpy-worker",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.inbox.get()
            if job is None:
                return
            fn, i, done = job
            try:
                fn(i)
                done.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.put(exc)


class ForkJoin:
    """Persistent workers for ``run`` (created on first use, again after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._pid = os.getpid()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._lib = None  # numpy's BLAS binding (False: none), looked up on first use

    def _blas(self):
        if self._lib is None:
            from ._numpy_fast import _level1_blas

            self._lib = _level1_blas()
        return self._lib

    def threads(self) -> int:
        """Threads a split may use: ``MAO_LAB_NUMPY_THREADS`` or BLAS's current count."""
        env = os.environ.get("MAO_LAB_NUMPY_THREADS", "")
        if env.strip().isdigit():
            return max(1, int(env))
        blas = self._blas()
        return blas.threads() if blas else 1

    def parts(self, work: int, extent: int, grain: int = 16, min_work: int = MIN_WORK) -> int:
        """How many parts an op of ``work`` steps whose split axis has ``extent`` entries
        gets: 1 below ``min_work``, or while a split region is active, else up to the
        thread count with at least ``grain`` entries per part."""
        if work < min_work or self._lock.locked():
            return 1
        return max(1, min(self.threads(), MAX_PARTS, extent // grain))

    def run(self, fn: Callable[[int], None], n: int) -> None:
        """fn(0) here and fn(1..n-1) on workers, BLAS at one thread meanwhile."""
        if n <= 1 or not self._lock.acquire(blocking=False):
            for i in range(n):
                fn(i)
            return
        blas = self._blas()
        try:
            if os.getpid() != self._pid:  # forked: the parent's threads do not exist here
                self._workers, self._pid = [], os.getpid()
                self._done = queue.SimpleQueue()
            while len(self._workers) < n - 1:
                self._workers.append(_Worker())
            before = blas.threads() if blas else 0
            if before > 1:
                blas.set_threads(1)
            try:
                for i in range(1, n):
                    self._workers[i - 1].inbox.put((fn, i, self._done))
                first = None
                try:
                    fn(0)
                except BaseException as exc:  # noqa: BLE001 - raised after the join
                    first = exc
                for _ in range(1, n):
                    exc = self._done.get()
                    if exc is not None and first is None:
                        first = exc
                if first is not None:
                    raise first
            finally:
                if before > 1:
                    blas.set_threads(before)
        finally:
            self._lock.release()


POOL = ForkJoin()


def bounds(i: int, n: int, extent: int, align: int = 1) -> tuple[int, int]:
    """[start, stop) of part ``i`` of ``n`` over ``extent`` entries, cut on ``align``."""
    units = -(-extent // align)
    lo, hi = units * i // n * align, units * (i + 1) // n * align
    return min(lo, extent), min(hi, extent)
