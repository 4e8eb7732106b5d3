"""Static snapshots: each widget's mimebundle carries text/html beside the live view, so a
notebook saved as HTML (nbconvert, docs) still shows the graph, curves and engines."""

from __future__ import annotations

import pytest
from _models import make_model

from mao_lab.layers import Dense, Flatten
from mao_lab.widgets import EngineMonitor, ModelGraph, TrainingDashboard, Workbench


def data_of(bundle):
    return bundle[0] if isinstance(bundle, tuple) else bundle


def test_graph_snapshot_has_every_node_and_edge_label():
    m = make_model([Flatten(name="f"), Dense(5, name="d1"), Dense(2, name="d2")],
                   input_shape=(2, 3))
    g = ModelGraph(m)
    data = data_of(g._repr_mimebundle_())
    assert "application/vnd.jupyter.widget-view+json" in data  # the live view stays first
    html = data["text/html"]
    assert html.count("<rect") == 4 and html.count("<polyline") == 3
    for text in ("d1", "Dense", "(5,)", "(6,)", "35 params", "12 params"):
        assert f">{text}</text>" in html, text


def test_dashboard_and_monitor_snapshots():
    dash = TrainingDashboard(max_rate=1e6)
    cb = dash.callback()
    cb.on_train_begin({"epochs": 1, "steps": 2})
    cb.on_epoch_begin(0)
    cb.on_batch_end(0, {"loss": 2.0, "size": 4})
    cb.on_batch_end(1, {"loss": 1.5, "size": 4})
    cb.on_epoch_end(0, {"loss": 1.75, "val_loss": 1.9})
    html = data_of(dash._repr_mimebundle_())["text/html"]
    assert html.count("<polyline") == 2 and "val_loss 1.9" in html and "loss 1.5" in html
    mon = EngineMonitor()
    mon.update([{"id": 3, "host": "gpu-box", "device": "opencl:0:0", "samples_per_s": 812.5,
                 "local_batch": 8, "status": "training"}])
    mon.flush()
    html = data_of(mon._repr_mimebundle_())["text/html"]
    assert "<td style='padding:2px 8px'>gpu-box</td>" in html and "812.5" in html
    assert "100.0%" in html


def test_workbench_snapshot_combines_the_three():
    wb = Workbench(make_model([Dense(2, name="only")], input_shape=(3,)))
    html = data_of(wb._repr_mimebundle_())["text/html"]
    assert "mao-static-graph" in html and "no training data yet" in html and "<table" in html


def test_nbconvert_html_shows_the_snapshot_when_no_widget_state_was_saved():
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    g = ModelGraph(make_model([Dense(4, name="hidden"), Dense(2, name="head")],
                              input_shape=(3,), name="tiny"))
    out = nbformat.v4.new_output("execute_result", data=data_of(g._repr_mimebundle_()),
                                 execution_count=1)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("g", outputs=[out],
                                                                   execution_count=1)])
    exporter = nbconvert.HTMLExporter(template_name="basic", exclude_input=True)
    html, _ = exporter.from_notebook_node(nb)
    assert "mao-static-graph" in html and ">hidden</text>" in html and ">tiny</div>" in html
