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

import contextlib
import itertools
import os
import queue
import threading
from collections.abc import Callable

# An op is split only above this much work (multiply-adds or elements moved): below it a
# hand-off (~10 us) costs more than half the op saves.
MIN_WORK = 1 << 20
MAX_PARTS = 8


class _Job:
    """One split op: parts 1..n-1 are claimed one at a time by whoever is free first."""

    def __init__(self, fn: Callable[[int], None], n: int) -> None:
        self.fn, self.n = fn, n
        self._next = itertools.count(1)  # next() is atomic under the GIL
        self.done: queue.SimpleQueue = queue.SimpleQueue()  # one entry per stolen part

    def claim(self) -> int | None:
        i = next(self._next)
        return i if i < self.n else None

    def run_claimed(self, i: int) -> BaseException | None:
        try:
            self.fn(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            return exc
        return None


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
            while (i := job.claim()) is not None:
                job.done.put(job.run_claimed(i))


class ForkJoin:
    """Persistent workers for ``run`` (created on first use, again after a fork).

    The caller does not wait for a worker to wake up: after its own part it takes every
    part no worker has started yet. So a busy machine (a worker that wakes late) costs at
    most the one-thread time, and an idle one runs the parts side by side.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._pid = os.getpid()
        self._lib = None  # numpy's BLAS binding (False: none), looked up on first use
        self._scoped = 0  # BLAS's thread count before the active ``scope`` (0: none)
        self._scope_lock = threading.Lock()

    def _blas(self):
        if self._lib is None:
            from ._numpy_fast import _level1_blas

            self._lib = _level1_blas()
        return self._lib

    def threads(self) -> int:
        """Threads a split may use: ``MAO_LAB_NUMPY_THREADS``, else BLAS's count (as it
        was when the current ``scope`` began)."""
        env = os.environ.get("MAO_LAB_NUMPY_THREADS", "")
        if env.strip().isdigit():
            return max(1, int(env))
        if self._scoped:
            return self._scoped
        blas = self._blas()
        return blas.threads() if blas else 1

    @contextlib.contextmanager
    def scope(self):
        """For a run of many ops: BLAS stays at one thread throughout (not only inside
        splits: OpenBLAS's own threads on the small unsplit products cost more than they
        save, and spin against a busy machine), splits use BLAS's count from before."""
        blas = self._blas()
        n = self.threads()
        if n <= 1 or self._scoped or not blas:
            yield  # splitting off (MAO_LAB_NUMPY_THREADS=1): BLAS keeps its own threads
            return
        with self._scope_lock:
            before = blas.threads()
            self._scoped = n
            blas.set_threads(1)
        try:
            yield
        finally:
            with self._scope_lock:
                self._scoped = 0
                blas.set_threads(before)

    def parts(self, work: int, extent: int, grain: int = 16, min_work: int = MIN_WORK) -> int:
        """How many parts an op of ``work`` steps whose split axis has ``extent`` entries
        gets: 1 below ``min_work``, or while a split region is active, else up to the
        thread count with at least ``grain`` entries per part."""
        if work < min_work or self._lock.locked():
            return 1
        return max(1, min(self.threads(), MAX_PARTS, extent // grain))

    def run(self, fn: Callable[[int], None], n: int) -> None:
        """fn(0) here and fn(1..n-1) on workers (or here, when no worker took them yet),
        BLAS at one thread meanwhile; the first exception is raised after all parts end."""
        if n <= 1 or not self._lock.acquire(blocking=False):
            for i in range(n):
                fn(i)
            return
        blas = self._blas()
        try:
            if os.getpid() != self._pid:  # forked: the parent's threads do not exist here
                self._workers, self._pid = [], os.getpid()
            while len(self._workers) < n - 1:
                self._workers.append(_Worker())
            before = blas.threads() if blas else 0
            if before > 1:
                blas.set_threads(1)
            try:
                job = _Job(fn, n)
                for w in self._workers[:n - 1]:
                    w.inbox.put(job)
                errors = [job.run_claimed(0)]
                mine = 0
                while (i := job.claim()) is not None:
                    errors.append(job.run_claimed(i))
                    mine += 1
                for _ in range(n - 1 - mine):
                    errors.append(job.done.get())
                first = next((e for e in errors if e is not None), None)
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
