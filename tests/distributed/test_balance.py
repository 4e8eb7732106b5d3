"""Shares, moving averages and the sample ledger, without a cluster."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab.distributed.balance import Balancer, normalize, split_counts
from mao_lab.distributed.plan import Ledger, round_steps
from mao_lab.errors import ConfigError


def test_split_counts_sums_and_is_proportional():
    assert split_counts(10, [0.5, 0.25, 0.25]) == [5, 3, 2]
    assert split_counts(64, [1, 3]) == [16, 48]
    assert split_counts(7, [1, 1, 1]) == [3, 2, 2]
    assert split_counts(3, [0.98, 0.01, 0.01], min_each=1) == [1, 1, 1]
    for total in (0, 1, 13, 1000):
        assert sum(split_counts(total, [0.2, 0.3, 0.5], min_each=1)) == total


@pytest.mark.parametrize("bad", [[], [-1, 2], [0, 0], [float("nan"), 1]])
def test_split_counts_rejects_bad_shares(bad):
    with pytest.raises(ConfigError, match="shares"):
        split_counts(10, bad)


def test_balancer_tracks_speed_and_rebalances_on_drift():
    b = Balancer([3, 5], "speed", alpha=0.5, drift=0.1)
    assert b.shares == [0.5, 0.5] and b.ideal_shares() is None
    for _ in range(2):
        b.record(3, samples=100, seconds=1.0)  # 100 samples/s
        b.record(5, samples=100, seconds=3.0)  # 33.3 samples/s
    assert b.rebalance_if_drifted()
    assert b.shares == pytest.approx([0.75, 0.25])
    assert b.local_batches(64) == [48, 16]
    assert not b.rebalance_if_drifted()  # no drift since
    for _ in range(4):  # engine 3 slows to the speed of 5: moving average follows
        b.record(3, samples=100, seconds=3.0)
    assert b.speeds()[3] == pytest.approx(1 / (0.5**4 * 0.01 + (1 - 0.5**4) * 0.03))
    assert b.rebalance_if_drifted() and b.shares[0] < 0.55
    b.remove(5)
    assert b.engines == [3] and b.shares == [1.0]


def test_balancer_moving_average_forgets_per_step():
    one, many = Balancer([0], "speed", alpha=0.3), Balancer([0], "speed", alpha=0.3)
    for b in (one, many):
        b.record(0, samples=32, seconds=0.32)  # 0.01 s per sample
    for _ in range(5):  # five one-step rounds at 0.03 s per sample ...
        one.record(0, samples=32, seconds=0.96)
    many.record(0, samples=160, seconds=4.8, steps=5)  # ... weigh as one 5-step round
    expected = 0.7**5 * 0.01 + (1 - 0.7**5) * 0.03
    assert one.sec_per_sample[0] == pytest.approx(expected, rel=1e-12)
    assert many.sec_per_sample[0] == pytest.approx(expected, rel=1e-12)


def test_balancer_equal_and_fixed_policies():
    b = Balancer([0, 1, 2], "equal")
    b.record(0, 10, 1.0)
    assert not b.rebalance_if_drifted() and b.local_batches(10) == [4, 3, 3]
    f = Balancer([0, 1], [1, 3])
    assert f.shares == [0.25, 0.75] and f.policy == "fixed"
    with pytest.raises(ConfigError, match="expected 2 shares"):
        Balancer([0, 1], [1, 2, 3])
    with pytest.raises(ConfigError, match="'speed', 'equal'"):
        Balancer([0, 1], "fast")
    assert normalize([2, 2]) == [0.5, 0.5]


def test_ledger_epoch_covers_every_sample_once():
    led = Ledger(103, [0, 1, 2], [0.5, 0.3, 0.2], seed=1)
    assert [int((led.owner == e).sum()) for e in (0, 1, 2)] == split_counts(103, [5, 3, 2])
    led.start_epoch(0)
    batches = {0: 5, 1: 3, 2: 2}
    while led.left:
        for e in led.engines:
            led.commit(e, len(led.peek(e, batches[e])))
    assert np.all(led.seen == 1)
    first = led.queues[0].copy()
    led.start_epoch(1)  # same owned samples, another order
    assert sorted(first) == sorted(led.queues[0]) and not np.array_equal(first, led.queues[0])


def test_ledger_rebalance_and_drop_keep_exact_once():
    led = Ledger(200, [0, 1], [0.5, 0.5], seed=0)
    led.start_epoch(0)
    for e in led.engines:  # rows shipped for the owned samples
        led.mark_held(e, led.remaining(e))
    led.commit(0, 20)
    led.commit(1, 20)
    moved = led.rebalance_remaining([0.8, 0.2])
    assert moved == 48 and len(led.remaining(0)) == 128 and len(led.remaining(1)) == 32
    assert len(led.missing(0)) == 48  # rows engine 0 must receive before its steps
    led.commit(0, 10)
    led.commit(1, 10)
    reassigned = led.drop(1, [1.0])
    assert reassigned == 22 and led.engines == [0]
    while led.left:
        led.commit(0, len(led.peek(0, 16)))
    assert np.all(led.seen == 1) and led.seen.sum() == 200
    led.assign_ownership([1.0])
    assert np.all(led.owner == 0)


def test_ledger_rejects_fewer_samples_than_engines():
    with pytest.raises(ConfigError, match="fewer samples than engines: 2 samples for 3"):
        Ledger(2, [0, 1, 2], [1, 1, 1])


def test_a_joining_engine_gets_a_share_and_rows_at_the_next_epoch():
    b = Balancer([0, 1], [1, 3])
    b.add(2)
    assert b.engines == [0, 1, 2] and b.policy == "equal" and b.shares == [1 / 3] * 3
    s = Balancer([0, 1], "speed")
    s.add(2)
    assert s.shares == pytest.approx([1 / 3] * 3) and s.ideal_shares() is None
    led = Ledger(90, [0, 1], [0.5, 0.5], seed=0)
    led.start_epoch(0)
    led.add(2)
    assert len(led.remaining(2)) == 0 and led.left == 90
    led.assign_ownership([1 / 3] * 3)
    led.start_epoch(1)
    assert [len(led.remaining(e)) for e in (0, 1, 2)] == [30, 30, 30]
    assert len(led.missing(2)) == 30 and len(led.missing(0)) == 30  # nothing held yet


def test_round_steps_split_an_epoch_without_a_short_tail():
    assert round_steps(32, 29) == 32  # within a quarter of the target: one round
    assert round_steps(40, 29) == 20 and round_steps(20, 29) == 20  # two equal rounds
    assert round_steps(5, 29) == 5 and round_steps(7, 1) == 1 and round_steps(3, 0) == 1
    for left in range(1, 200):
        for target in (1, 3, 16, 29):
            rounds, rest = 0, left
            while rest:
                step = round_steps(rest, target)
                assert 1 <= step <= max(target + target // 4, 1)
                rest -= step
                rounds += 1
            assert rounds == (1 if left <= target + target // 4 else -(-left // target))
