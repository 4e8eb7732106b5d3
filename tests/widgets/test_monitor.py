"""EngineMonitor: the feed API, shares, straggler flags, dead engines, throttling, 1-64
engines, and reading a training handle's live metrics."""

from __future__ import annotations

import threading

import pytest

from mao_lab.errors import ConfigError
from mao_lab.widgets import EngineMonitor
from mao_lab.widgets.monitor import engine_rows


def report(i, sps, batch, **kw):
    return {"id": i, "host": f"node{i}", "device": "numpy", "status": "training",
            "samples_per_s": sps, "local_batch": batch, "compute_s": 0.01, "comm_s": 0.002,
            "wait_s": 0.001, "cpu_percent": 50.0, "rss": 100e6 * (i + 1), **kw}


def test_rows_shares_and_a_straggler_against_its_share():
    # engine 1 has half the global batch but delivers a fifth of the throughput
    rows = engine_rows({0: report(0, 800.0, 32), 1: report(1, 200.0, 32)}, {}, now=10.0)
    assert [r["share"] for r in rows] == [0.5, 0.5]
    assert [r["straggler"] for r in rows] == [False, True]
    # proportional shares: nobody straggles
    rows = engine_rows({0: report(0, 800.0, 48), 1: report(1, 270.0, 16)}, {}, now=10.0)
    assert [r["straggler"] for r in rows] == [False, False]
    assert rows[0]["share"] == 0.75
    assert rows[1]["mem"] == pytest.approx(1.0) and rows[0]["mem"] == pytest.approx(0.5)


def test_update_merges_keeps_history_and_dead_engines_stay_visible(sent):
    mon = EngineMonitor(max_rate=1000)
    out = sent(mon)
    mon.update([report(0, 100.0, 32), report(1, 100.0, 32)])
    mon.update([{"id": 0, "samples_per_s": 120.0}])
    mon.mark_dead(1, error="engine 1 stopped answering")
    mon.flush()
    by_id = {r["id"]: r for r in mon.rows}
    assert by_id[0]["history"] == [100.0, 120.0] and by_id[0]["host"] == "node0"
    assert by_id[1]["status"] == "dead" and "stopped answering" in by_id[1]["error"]
    assert by_id[0]["share"] == 1.0  # a dead engine holds no share
    assert any("rows" in u for u in out.updates())


def test_sixty_four_engines():
    mon = EngineMonitor(max_rate=1000)
    mon.update([report(i, 100.0 + i, 8) for i in range(64)])
    mon.flush()
    assert len(mon.rows) == 64
    assert sum(r["share"] for r in mon.rows) == pytest.approx(1.0, abs=1e-4)


def test_updates_are_throttled_and_merged():
    mon = EngineMonitor(max_rate=2)
    pushes = []
    mon.observe(lambda ch: pushes.append(ch["new"]), names=["rows"])
    for k in range(50):
        mon.update([report(0, float(k), 8)])
    assert len(pushes) == 1  # the first at once, the rest merged into one timed push
    done = threading.Event()
    mon.observe(lambda ch: done.set(), names=["rows"])
    assert done.wait(5)
    assert mon.rows[0]["samples_per_s"] == 49.0 and len(mon.rows[0]["history"]) == 40


def test_bad_reports_name_the_problem():
    mon = EngineMonitor()
    with pytest.raises(ConfigError, match="integer 'id'"):
        mon.update([{"host": "x"}])
    with pytest.raises(ConfigError, match="status must be one of"):
        mon.update([{"id": 0, "status": "asleep"}])
    with pytest.raises(ConfigError, match="unknown report keys \\['speed'\\]"):
        mon.update([{"id": 0, "speed": 3}])
    with pytest.raises(ConfigError, match="max_rate must be > 0"):
        EngineMonitor(max_rate=0)
