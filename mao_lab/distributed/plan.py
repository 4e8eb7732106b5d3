"""The sample ledger: which engine owns, holds and still has to process which sample.

Engines own a fixed part of the dataset across epochs (rows travel once); each epoch every
engine walks its own samples in a seeded order, ``local_batch`` per step. Rebalancing and
engine loss move unprocessed samples between engines, and the ledger counts every sample
processed so an epoch can prove each one was seen exactly once. ``round_steps`` cuts an
epoch into MPI rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ClusterError, ConfigError
from .balance import split_counts


class Ledger:
    """Ownership, per-epoch queues and exact-once accounting of ``n`` samples.

    Args:
        n: number of training samples.
        engines: engine ids in a fixed order.
        shares: one share per engine (sums to 1).
        seed: seeds ownership and the per-epoch order.
        contiguous: engines own contiguous index ranges (Parquet row groups) at first.

    Example:
        >>> led = Ledger(10, [0, 1], [0.6, 0.4], seed=0)
        >>> led.start_epoch(0)
        >>> [len(led.remaining(e)) for e in (0, 1)]
        [6, 4]
    """

    def __init__(self, n: int, engines: Sequence[int], shares: Sequence[float], seed: int = 0,
                 contiguous: bool = False):
        if n < len(engines):
            raise ConfigError(f"fewer samples than engines: {n} samples for {len(engines)} "
                              f"engines; expected at least one sample per engine")
        self.n, self.seed = int(n), int(seed)
        self.engines = list(engines)
        self.owner = np.full(self.n, -1, dtype=np.int64)
        self.held = {e: np.zeros(self.n, dtype=bool) for e in self.engines}
        self.queues: dict[int, np.ndarray] = {e: np.zeros(0, np.int64) for e in self.engines}
        self.pos: dict[int, int] = dict.fromkeys(self.engines, 0)
        self.seen = np.zeros(self.n, dtype=np.int64)
        self.epoch = -1
        self.contiguous = contiguous  # own row ranges (engines read their own row groups)
        self.assign_ownership(shares)

    # ------------------------------------------------------------------ ownership
    def assign_ownership(self, shares: Sequence[float]) -> None:
        """Move the fewest samples so each engine owns ``split_counts(n, shares)`` of them."""
        targets = dict(zip(self.engines, split_counts(self.n, shares, min_each=1)))
        rng = np.random.default_rng([self.seed, 7])
        # a fixed order: who gives which samples away (ranges when engines read row groups)
        key = np.arange(self.n) if self.contiguous else rng.permutation(self.n)
        pool = [np.flatnonzero(self.owner == -1)]
        for e in self.engines:
            mine = np.flatnonzero(self.owner == e)
            mine = mine[np.argsort(key[mine], kind="stable")]
            if len(mine) > targets[e]:
                pool.append(mine[targets[e]:])
                self.owner[mine[targets[e]:]] = -1
        free = np.concatenate(pool)
        free = free[np.argsort(key[free], kind="stable")]
        start = 0
        for e in self.engines:
            need = targets[e] - int(np.count_nonzero(self.owner == e))
            if need > 0:
                self.owner[free[start:start + need]] = e
                start += need

    # ------------------------------------------------------------------ epochs
    def start_epoch(self, epoch: int) -> None:
        """Queue each engine's owned samples in this epoch's seeded order."""
        self.epoch = int(epoch)
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        owners = self.owner[perm]
        for e in self.engines:
            self.queues[e] = perm[owners == e]
            self.pos[e] = 0
        self.seen[:] = 0

    def remaining(self, e: int) -> np.ndarray:
        """Samples engine ``e`` still has to process this epoch (in order)."""
        return self.queues[e][self.pos[e]:]

    def peek(self, e: int, count: int) -> np.ndarray:
        """The next ``count`` samples of engine ``e`` (fewer at the end of its queue)."""
        return self.queues[e][self.pos[e]:self.pos[e] + count]

    def commit(self, e: int, count: int) -> np.ndarray:
        """Record that engine ``e`` processed its next ``count`` samples; returns them."""
        done = self.peek(e, count)
        if len(done) != count:
            raise ClusterError(f"engine {e} reported {count} samples but had {len(done)} left")
        self.seen[done] += 1
        self.pos[e] += count
        return done

    @property
    def left(self) -> int:
        """Samples not yet processed this epoch, over all engines."""
        return sum(len(self.remaining(e)) for e in self.engines)

    def steps_left(self, batches: dict[int, int]) -> int:
        """Steps until every queue is empty with these local batch sizes."""
        return max((-(-len(self.remaining(e)) // max(batches[e], 1)) for e in self.engines),
                   default=0)

    # ------------------------------------------------------------------ moving work
    def rebalance_remaining(self, shares: Sequence[float]) -> int:
        """Re-split the unprocessed samples by ``shares``; returns how many moved.

        Engines over their new target give away the tail of their queue; engines under it
        append those samples (and become their owners, so the rows travel only once).
        """
        rem = {e: len(self.remaining(e)) for e in self.engines}
        targets = dict(zip(self.engines, split_counts(sum(rem.values()), shares)))
        pool = []
        for e in self.engines:
            extra = rem[e] - targets[e]
            if extra > 0:
                q = self.queues[e]
                pool.append(q[len(q) - extra:])
                self.queues[e] = q[:len(q) - extra]
        moved = np.concatenate(pool) if pool else np.zeros(0, np.int64)
        start = 0
        for e in self.engines:
            need = targets[e] - rem[e]
            if need > 0:
                take = moved[start:start + need]
                self.queues[e] = np.concatenate([self.queues[e], take])
                self.owner[take] = e
                start += need
        return int(len(moved))

    def add(self, e: int) -> None:
        """Take in a new engine (it owns nothing until the next ``assign_ownership``)."""
        if e in self.engines:
            return
        self.engines.append(e)
        self.held[e] = np.zeros(self.n, dtype=bool)
        self.queues[e] = np.zeros(0, np.int64)
        self.pos[e] = 0

    def drop(self, e: int, shares: Sequence[float]) -> int:
        """Remove a lost engine; its unprocessed samples go to the others by ``shares``.

        Returns the number of samples reassigned. The engine's owned samples are owned by
        nobody until the next ``assign_ownership``.
        """
        if e not in self.engines:
            return 0
        orphan = self.remaining(e)
        self.engines.remove(e)
        del self.queues[e], self.pos[e], self.held[e]
        self.owner[self.owner == e] = -1
        if not self.engines:
            return 0
        targets = split_counts(len(orphan), shares)
        start = 0
        for s, count in zip(self.engines, targets):
            take = orphan[start:start + count]
            self.queues[s] = np.concatenate([self.queues[s], take])
            self.owner[take] = s
            start += count
        return int(len(orphan))

    # ------------------------------------------------------------------ rows on engines
    def missing(self, e: int) -> np.ndarray:
        """Samples engine ``e`` must process but does not hold yet."""
        rem = self.remaining(e)
        return rem[~self.held[e][rem]]

    def mark_held(self, e: int, idx: np.ndarray) -> None:
        """Record that engine ``e`` now holds the rows ``idx``."""
        self.held[e][idx] = True

    def state(self) -> dict:
        """Arrays that a checkpoint needs to continue with the same ownership."""
        return {"owner": self.owner.copy(), "engines": list(self.engines)}


def round_steps(left: int, target: int) -> int:
    """Steps of the next MPI round: about ``target``, without a short tail round.

    What is left of the epoch is split into equal rounds (one round when it exceeds the
    target by at most a quarter): each round ends in a client round trip while the
    engines idle, so 32 steps left at a target of 29 make one round, not 29 + 3.

    Example:
        >>> round_steps(32, 29), round_steps(40, 29), round_steps(5, 29)
        (32, 20, 5)
    """
    target = max(int(target), 1)
    if left <= target + target // 4:
        return left
    rounds = -(-left // target)
    return -(-left // rounds)
