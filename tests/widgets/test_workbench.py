"""Workbench: composes the three widgets, feeds them from a single-process fit, shows a
cluster's engines, and follows a distributed TrainingHandle (metrics, dead engines, edits)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from _drive import from_browser_custom
from _models import make_model

from mao_lab.distributed.handle import TrainingHandle
from mao_lab.layers import Dense
from mao_lab.widgets import EngineMonitor, ModelGraph, TrainingDashboard, Workbench


def small_model():
    m = make_model([Dense(8, activation="relu", name="h"), Dense(3, activation="softmax",
                                                                name="out")], input_shape=(4,))
    return m


def test_single_process_fit_feeds_dashboard_and_a_local_engine_row():
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    wb = Workbench(m)
    kinds = (ModelGraph, TrainingDashboard, EngineMonitor)
    assert [isinstance(c, k) for c, k in zip(wb.children, kinds)] == [True, True, True]
    x = np.random.default_rng(1).normal(size=(48, 4)).astype(np.float32)
    y = np.arange(48) % 3
    hist = wb.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y))
    assert len(hist.history["loss"]) == 2
    assert len(wb.dashboard.series["val_loss"]) == 2
    assert wb.dashboard.series["loss"][-1][0] == 6  # 2 epochs x 3 batches
    (row,) = wb.monitor.rows
    assert row["id"] == 0 and row["status"] == "idle" and row["samples_per_s"] > 0
    assert len(wb.graph.nodes) == 3
    wb.close()


def test_cluster_inventory_becomes_idle_rows():
    info = [SimpleNamespace(id=i, host=f"h{i}", device=None,
                            devices=[{"key": "opencl:0:0", "vendor": "pocl"}]) for i in range(2)]
    wb = Workbench(small_model(), cluster=SimpleNamespace(inventory=lambda: info))
    assert [(r["id"], r["host"], r["device"], r["vendor"], r["status"]) for r in wb.monitor.rows] \
        == [(0, "h0", "opencl:0:0", "pocl", "idle"), (1, "h1", "opencl:0:0", "pocl", "idle")]


def test_follow_a_training_handle_metrics_and_engine_loss():
    h = TrainingHandle()
    wb = Workbench(small_model())
    wb.monitor.min_interval = 0.0
    got = threading.Event()
    wb.monitor.observe(lambda ch: got.set() if len(ch["new"]) == 2 else None, names=["rows"])
    wb.follow(h)
    h._update(metrics={0: {"device": "numpy", "samples_per_s": 500.0, "local_batch": 48,
                           "compute_s": 0.05, "comm_s": 0.01, "wait_s": 0.0, "rss": 1e8},
                       1: {"device": "numpy", "samples_per_s": 150.0, "local_batch": 16,
                           "compute_s": 0.05, "comm_s": 0.01, "wait_s": 0.02, "rss": 1e8}},
              shares={0: 0.75, 1: 0.25})
    h._emit("metrics", {})
    assert got.wait(5)
    rows = {r["id"]: r for r in wb.monitor.rows}
    assert rows[0]["share"] == 0.75 and rows[1]["status"] == "training"
    h._event("engine_lost", engine=1, error="engine 1 died")
    rows = {r["id"]: r for r in wb.monitor.rows}
    assert rows[1]["status"] == "dead" and len(rows) == 2
    wb.close()


def test_inspection_follows_training_and_device_moves_redraw():
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    wb = Workbench(m)
    wb.graph.selected = "h"
    before = wb.graph.inspection["weights"]["kernel"]["norm"]
    x = np.random.default_rng(2).normal(size=(32, 4)).astype(np.float32)
    wb.fit(x, np.arange(32) % 3, batch_size=8, epochs=3)
    after = wb.graph.inspection["weights"]["kernel"]["norm"]
    kernel = m.layers[0].get_weights()[0]
    assert after != before and after == pytest.approx(float(np.linalg.norm(kernel)), rel=1e-6)
    assert wb.graph.inspection["grads"]["kernel"]["norm"] > 0


def test_non_blocking_single_process_fit_takes_edits_and_stops_from_the_button():
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    wb = Workbench(m)
    x = np.random.default_rng(3).normal(size=(256, 4)).astype(np.float32)
    started = threading.Event()
    wb.dashboard.observe(lambda ch: started.set() if ch["new"].get("loss") else None,
                         names=["series"])  # a first batch is done: fit is in its loop
    run = wb.fit(x, np.arange(256) % 3, batch_size=8, epochs=1000, block=False)
    assert started.wait(30) and run.running
    reply = wb.graph.handle_request({"id": 1, "action": "edit", "layer": "h",
                                     "values": {"units": "16"}})
    assert reply["ok"] and reply["status"] == "applied", reply
    assert m.layers[0].get_config()["units"] == 16
    refused = wb.graph.handle_request({"id": 2, "action": "edit", "layer": "out",
                                       "values": {"units": "4"}})  # would change the output
    assert not refused["ok"] and refused["field"] == "units"
    from_browser_custom(wb.dashboard, {"id": "s", "action": "stop"})
    history = run.wait(60)
    assert 1 <= len(history.history["loss"]) < 1000 and wb.dashboard.status == "done"
