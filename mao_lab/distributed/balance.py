"""Speed-proportional shares: split a fixed global batch by measured engine speed.

Pure functions and one small stateful ``Balancer`` (moving averages of per-sample step time,
rebalancing when the shares drift); no ipyparallel here, so it is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError


def split_counts(total: int, shares: Sequence[float], min_each: int = 0) -> list[int]:
    """Split ``total`` items into integer counts proportional to ``shares`` (sum == total).

    Largest-remainder rounding, ties broken by position, so the result is deterministic.
    Every count is then lifted to at least ``min_each`` (when ``total`` allows it), taking
    from the largest counts.

    Example:
        >>> split_counts(10, [0.5, 0.25, 0.25])
        [5, 3, 2]
    """
    w = np.asarray(shares, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"shares must be a non-empty list of non-negative numbers with a "
                          f"positive sum; received {list(shares)!r}")
    if total < 0:
        raise ConfigError(f"cannot split a negative count; received total={total}")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    remainder = total - int(counts.sum())
    order = np.lexsort((np.arange(len(w)), -(exact - counts)))  # biggest fraction first
    counts[order[:remainder]] += 1
    if total >= min_each * len(w):  # lift the smallest to min_each, taking from the largest
        while counts.min() < min_each:
            counts[int(np.argmax(counts))] -= 1
            counts[int(np.argmin(counts))] += 1
    return [int(c) for c in counts]


def normalize(shares: Sequence[float]) -> list[float]:
    """Shares scaled to sum to 1 (validated)."""
    w = np.asarray(shares, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"shares must be non-negative numbers with a positive sum; "
                          f"received {list(shares)!r}")
    return [float(v) for v in w / w.sum()]


class Balancer:
    """Keeps each engine's share of the global batch proportional to its measured speed.

    Speed is samples per second of *compute* (forward, backward and update: waiting for
    others and communication are excluded), smoothed by an exponential moving average.
    Shares are recomputed when any engine's ideal share drifts from its current share by
    more than ``drift`` (relative), at most every ``min_rounds`` measurements.

    Args:
        engines: engine ids in a fixed order.
        policy: "speed", "equal", or explicit shares (a list, one per engine; fixed).
        alpha: weight of the newest step in the moving average.
        drift: relative change of an ideal share that triggers a rebalance.
        min_rounds: measurements per engine before the first speed-based shares.

    Example:
        >>> b = Balancer([0, 1], "speed")
        >>> for _ in range(3):
        ...     b.record(0, samples=100, seconds=1.0); b.record(1, samples=100, seconds=3.0)
        >>> b.rebalance_if_drifted()
        True
        >>> [round(s, 2) for s in b.shares]
        [0.75, 0.25]
    """

    def __init__(self, engines: Sequence[int], policy: str | Sequence[float] = "speed", *,
                 alpha: float = 0.3, drift: float = 0.1, min_rounds: int = 2):
        self.engines = list(engines)
        if not self.engines:
            raise ConfigError("a Balancer needs at least one engine; received none")
        if isinstance(policy, str):
            if policy not in ("speed", "equal"):
                raise ConfigError(f"balance must be 'speed', 'equal' or a list of shares; "
                                  f"received {policy!r}")
            self.policy = policy
            self.shares = [1.0 / len(self.engines)] * len(self.engines)
        else:
            fixed = list(policy)
            if len(fixed) != len(self.engines):
                raise ConfigError(f"balance: expected {len(self.engines)} shares (one per "
                                  f"engine); received {len(fixed)}: {fixed!r}")
            self.policy = "fixed"
            self.shares = normalize(fixed)
        if not 0 < alpha <= 1:
            raise ConfigError(f"alpha must be in (0, 1]; received {alpha}")
        self.alpha, self.drift, self.min_rounds = alpha, drift, min_rounds
        self.sec_per_sample: dict[int, float] = {}
        self.rounds: dict[int, int] = dict.fromkeys(self.engines, 0)
        self.rebalances = 0

    # -- measurements
    def record(self, engine: int, samples: int, seconds: float, steps: int = 1) -> None:
        """Add one measurement: ``samples`` processed in ``seconds`` of compute.

        ``steps``: how many steps the measurement spans. The moving average forgets per
        step, not per measurement: a round of k steps weighs as k one-step rounds would
        (``1 - (1 - alpha) ** k``), so long MPI rounds follow a speed change as quickly
        (in steps) as one-step parameter-server rounds.
        """
        if engine not in self.rounds or samples <= 0 or seconds <= 0:
            return
        t = seconds / samples
        old = self.sec_per_sample.get(engine)
        a = 1.0 - (1.0 - self.alpha) ** max(int(steps), 1)
        self.sec_per_sample[engine] = t if old is None else (1 - a) * old + a * t
        self.rounds[engine] += 1

    def speeds(self) -> dict[int, float | None]:
        """Smoothed samples/s per engine (None before the first measurement)."""
        return {e: (1.0 / self.sec_per_sample[e] if e in self.sec_per_sample else None)
                for e in self.engines}

    def share_of(self, engine: int) -> float:
        """Current share of ``engine``."""
        return self.shares[self.engines.index(engine)]

    def ideal_shares(self) -> list[float] | None:
        """Shares proportional to the smoothed speeds, or None while not yet measured."""
        if self.policy != "speed":
            return list(self.shares)
        if any(self.rounds[e] < self.min_rounds for e in self.engines):
            return None
        return normalize([1.0 / self.sec_per_sample[e] for e in self.engines])

    def rebalance_if_drifted(self) -> bool:
        """Adopt the ideal shares when one drifted by more than ``drift``; True if changed."""
        ideal = self.ideal_shares()
        if ideal is None or self.policy != "speed":
            return False
        moved = max(abs(i - s) / max(s, 1e-12) for i, s in zip(ideal, self.shares))
        if moved <= self.drift:
            return False
        self.shares = ideal
        self.rebalances += 1
        return True

    # -- membership
    def add(self, engine: int) -> None:
        """Take in a new engine with the mean share (speed shares then measure it)."""
        if engine in self.engines:
            return
        self.engines.append(engine)
        self.shares = normalize(self.shares + [1.0 / len(self.shares)])
        self.rounds[engine] = 0
        if self.policy == "fixed":  # fixed shares cannot name a newcomer: split equally
            self.policy = "equal"
            self.shares = [1.0 / len(self.engines)] * len(self.engines)

    def remove(self, engine: int) -> None:
        """Forget a lost engine; the others' shares are renormalized."""
        if engine not in self.engines:
            return
        i = self.engines.index(engine)
        del self.engines[i]
        del self.shares[i]
        self.rounds.pop(engine, None)
        self.sec_per_sample.pop(engine, None)
        if not self.engines:
            return
        if sum(self.shares) <= 0:
            self.shares = [1.0] * len(self.engines)
        self.shares = normalize(self.shares)

    def local_batches(self, global_batch: int) -> list[int]:
        """The global batch split by the current shares (every engine gets >= 1 if possible)."""
        return split_counts(global_batch, self.shares, min_each=1)

    def state(self) -> dict:
        """JSON-friendly state (for checkpoints and metrics)."""
        return {"engines": list(self.engines), "shares": list(self.shares),
                "speeds": {str(k): v for k, v in self.speeds().items()},
                "policy": self.policy, "rebalances": self.rebalances}
