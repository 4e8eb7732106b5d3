"""shard/reshard exact cover and proportionality (property tests), stratified splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mao_lab.data import from_numpy, proportional_sizes, reshard
from mao_lab.errors import DataError


def _ids(n: int, classes: int = 1):
    """Dataset whose single feature is the row id, so covers can be checked exactly."""
    return from_numpy(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % classes,
                      num_classes=classes)


def _rows(ds) -> list[int]:
    return ds.numpy()[0][:, 0].astype(int).tolist()


weights_st = st.lists(st.floats(min_value=0.0, max_value=100.0, allow_nan=False), min_size=1,
                      max_size=8).filter(lambda w: sum(w) > 0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), w=weights_st)
def test_shard_is_an_exact_proportional_deterministic_cover(n, w):
    ds = _ids(n)
    if sum(x > 0 for x in w) > n:
        with pytest.raises(DataError, match="shards with positive weight but only"):
            ds.shard(w)
        return
    shards = ds.shard(w)
    assert len(shards) == len(w)
    assert sum((_rows(s) for s in shards), []) == list(range(n))  # exact cover, in order
    sizes = np.array([len(s) for s in shards])
    ideal = np.asarray(w) / sum(w) * n
    bumped = sizes - ideal
    # largest remainder: within one row, except the min-one-row rule for tiny weights
    assert np.all(np.abs(bumped) < 1 + sum(x > 0 for x in w)) and sizes.sum() == n
    assert all(k >= 1 for k, x in zip(sizes, w) if x > 0)
    assert all(k == 0 for k, x in zip(sizes, w) if x == 0)
    assert [len(s) for s in ds.shard(w)] == sizes.tolist()  # deterministic
    x0 = ds.numpy()[0]
    assert all(np.shares_memory(s.numpy()[0], x0) for s in shards if len(s))  # zero-copy


@settings(max_examples=40, deadline=None)
@given(n=st.integers(8, 200), w1=weights_st, w2=weights_st, seed=st.integers(0, 9))
def test_reshard_keeps_an_exact_cover(n, w1, w2, seed):
    ds = _ids(n)
    if sum(x > 0 for x in w1) > n or sum(x > 0 for x in w2) > n:
        return
    second = reshard(ds.shard(w1), w2)
    assert sum((_rows(s) for s in second), []) == list(range(n))
    assert [len(s) for s in second] == [len(s) for s in ds.shard(w2)]
    epoch = ds.reshard(w2, seed=seed, epoch=1)
    assert sorted(sum((_rows(s) for s in epoch), [])) == list(range(n))
    assert [_rows(s) for s in epoch] == [_rows(s) for s in ds.reshard(w2, seed=seed, epoch=1)]


def test_proportional_sizes_values():
    assert proportional_sizes(10, [1, 1, 2]).tolist() == [3, 2, 5]
    assert proportional_sizes(100, [3, 1]).tolist() == [75, 25]
    assert proportional_sizes(5, [1000, 1, 0]).tolist() == [4, 1, 0]
    assert proportional_sizes(7, [1, 1, 1]).tolist() == [3, 2, 2]


@pytest.mark.parametrize("bad, msg", [
    ([1, -1], r"must be >= 0; received \[1.0, -1.0\]"),
    ([0, 0], "must not all be zero"),
    ([1, float("nan")], "must be finite"),
    ([1, float("inf")], "must be finite"),
    ([], "non-empty 1-D"),
    (["a"], "must be numbers"),
])
def test_bad_shard_weights(bad, msg):
    with pytest.raises(DataError, match=msg):
        _ids(10).shard(bad)


def test_more_shards_than_rows():
    with pytest.raises(DataError, match="3 shards with positive weight but only 2 rows"):
        _ids(2).shard([1, 1, 1])


def test_stratified_split_keeps_class_proportions_on_sorted_labels():
    y = np.repeat(np.arange(4), [100, 60, 40, 20])  # sorted by label, unbalanced
    ds = from_numpy(np.arange(220, dtype=np.float32)[:, None], y)
    train, val, test = ds.split([0.7, 0.2, 0.1], seed=5)
    counts = [p.class_counts().tolist() for p in (train, val, test)]
    assert counts == [[70, 42, 28, 14], [20, 12, 8, 4], [10, 6, 4, 2]]
    allrows = sorted(sum((_rows(p) for p in (train, val, test)), []))
    assert allrows == list(range(220))
    assert train.numpy()[1][:20].tolist() != sorted(train.numpy()[1][:20].tolist()) or \
        len(set(train.numpy()[1][:20])) > 1  # rows mixed, not sorted by label
    again = ds.split([0.7, 0.2, 0.1], seed=5)
    assert _rows(again[0]) == _rows(train)
    assert _rows(ds.split([0.7, 0.2, 0.1], seed=6)[0]) != _rows(train)


def test_unstratified_split_sizes_and_float_shorthand():
    ds = _ids(101, classes=3)
    a, b = ds.split(0.8, seed=0, stratify=False)
    assert (len(a), len(b)) == (81, 20)
    assert sorted(_rows(a) + _rows(b)) == list(range(101))


@pytest.mark.parametrize("bad", [[0.5, 0.4], [0.5, 0.6], [1.0, 0.0], [-0.5, 1.5]])
def test_bad_split_fractions(bad):
    with pytest.raises(DataError, match="split fractions"):
        _ids(10).split(bad)


def test_split_part_would_be_empty():
    with pytest.raises(DataError, match="would be empty"):
        _ids(3).split([0.9, 0.1], stratify=False)
