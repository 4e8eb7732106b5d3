"""ModelGraph: state from model.graph, edits requested as the browser does, replies, errors
that leave the model unchanged, insert/remove/undo, inspection and pending edits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _drive import from_browser_custom, from_browser_update
from _models import make_model

from mao_lab.errors import ConfigError
from mao_lab.layers import Conv2D, Dense, Flatten, MaxPool2D
from mao_lab.widgets import ModelGraph


def lenet_like():
    return make_model([Conv2D(4, 5, activation="relu", name="c1"), MaxPool2D(2, name="p1"),
                       Flatten(name="f"), Dense(10, activation="relu", name="d1"),
                       Dense(3, name="out")], input_shape=(1, 12, 12))


def node(w, name):
    return next(n for n in w.nodes if n["id"] == name)


def test_nodes_edges_shapes_and_params_come_from_the_model():
    m = lenet_like()
    w = ModelGraph(m, rows=4)
    assert [n["id"] for n in w.nodes] == ["input", "c1", "p1", "f", "d1", "out"]
    assert node(w, "c1")["output_shape"] == "(4, 8, 8)"
    assert node(w, "c1")["params"] == 4 * 1 * 5 * 5 + 4
    assert node(w, "d1")["params"] == 64 * 10 + 10
    assert node(w, "input")["output_shape"] == "(1, 12, 12)"
    labels = {(e["source"], e["target"]): e["label"]["text"] for e in w.edges}
    assert labels[("f", "d1")] == "(64,)"
    assert len({n["x"] for n in w.nodes}) == 2  # 6 nodes wrapped at 4 rows
    json.dumps({"nodes": w.nodes, "edges": w.edges, "size": w.size})  # all JSON-able


def test_selecting_a_node_in_the_browser_generates_typed_fields(sent):
    w = ModelGraph(lenet_like())
    from_browser_update(w, selected="c1")
    kinds = {f["name"]: f["kind"] for f in w.fields}
    assert kinds["filters"] == "int" and kinds["padding"] == "choice"
    assert kinds["activation"] == "choice" and kinds["use_bias"] == "bool"
    assert kinds["kernel_size"] in ("int", "ints")
    assert "name" not in kinds
    assert w.inspection["layer"] == "c1" and set(w.inspection["weights"]) == {"kernel", "bias"}


def test_edit_through_a_request_changes_model_shapes_and_replies_ok(sent):
    m = lenet_like()
    w = ModelGraph(m)
    out = sent(w)
    from_browser_custom(w, {"id": "r1", "action": "edit", "layer": "d1",
                            "values": {"units": "32", "activation": "tanh"}})
    reply = out.custom()[-1]
    assert reply == {**reply, "type": "reply", "id": "r1", "ok": True, "status": "applied"}
    d1 = next(la for la in m.layers if la.name == "d1")
    assert d1.get_config()["units"] == 32 and d1.get_config()["activation"] == "tanh"
    assert node(w, "d1")["output_shape"] == "(32,)"
    assert node(w, "d1")["params"] == 64 * 32 + 32
    assert node(w, "out")["params"] == 32 * 3 + 3
    assert any("nodes" in u for u in out.updates())  # the browser got the new graph
    assert w.last_reply["id"] == "r1"


@pytest.mark.parametrize("values,field,text", [
    ({"units": "-3"}, "units", "units"),
    ({"units": "abc"}, "units", "units: expected an integer; received 'abc'"),
    ({"units": "2.5"}, "units", "expected an integer"),
    ({"activation": "swish"}, "activation", "activation: expected one of"),
])
def test_invalid_edit_shows_an_error_on_its_field_and_leaves_the_model(sent, values, field, text):
    m = lenet_like()
    w = ModelGraph(m)
    before = json.dumps(m.get_config(), sort_keys=True)
    weights = [la.get_weights() for la in m.layers]
    out = sent(w)
    from_browser_custom(w, {"id": "bad", "action": "edit", "layer": "d1", "values": values})
    reply = out.custom()[-1]
    assert reply["ok"] is False and reply["field"] == field and text in reply["error"]
    assert json.dumps(m.get_config(), sort_keys=True) == before
    for la, ws in zip(m.layers, weights):
        for a, b in zip(la.get_weights(), ws):
            np.testing.assert_array_equal(a, b)
    assert all(set(u) == {"last_reply"} for u in out.updates())  # nothing redrawn


def test_kernel_bigger_than_the_input_is_refused_on_kernel_size(sent):
    m = lenet_like()
    w = ModelGraph(m)
    out = sent(w)
    from_browser_custom(w, {"id": 1, "action": "edit", "layer": "c1",
                            "values": {"kernel_size": "20"}})
    reply = out.custom()[-1]
    assert reply["ok"] is False and reply["field"] == "kernel_size"
    assert node(w, "c1")["output_shape"] == "(4, 8, 8)"


def test_insert_remove_undo_round_trip(sent):
    m = lenet_like()
    w = ModelGraph(m)
    out = sent(w)
    from_browser_custom(w, {"id": 1, "action": "insert", "after": "d1", "class_name": "Dropout"})
    assert out.custom()[-1]["ok"], out.custom()[-1]
    assert [n["class_name"] for n in w.nodes][-2:] == ["Dropout", "Dense"]
    assert len(m.layers) == 6
    from_browser_custom(w, {"id": 2, "action": "remove", "layer": "p1"})
    assert out.custom()[-1]["ok"]
    assert "p1" not in [n["id"] for n in w.nodes]
    assert node(w, "f")["output_shape"] == "(256,)"
    from_browser_custom(w, {"id": 3, "action": "undo"})
    assert out.custom()[-1]["ok"]
    assert node(w, "f")["output_shape"] == "(64,)"
    from_browser_custom(w, {"id": 4, "action": "remove", "layer": "nope"})
    assert "no layer named 'nope'" in out.custom()[-1]["error"]
    from_browser_custom(w, {"id": 5, "action": "fly"})
    assert "unknown action 'fly'" in out.custom()[-1]["error"]


def test_model_changes_made_in_python_redraw_the_graph():
    m = lenet_like()
    w = ModelGraph(m)
    v = w.version
    m.edit("d1", units=7)
    assert w.version > v and node(w, "d1")["output_shape"] == "(7,)"
    w.close()
    m.edit("d1", units=8)  # unsubscribed: no error, no redraw
    assert node(w, "d1")["output_shape"] == "(7,)"


def test_inspection_shows_activations_of_the_chosen_sample():
    m = lenet_like()
    x = np.random.default_rng(0).random((3, 1, 12, 12)).astype(np.float32)
    w = ModelGraph(m, samples=x)
    from_browser_update(w, selected="c1")
    act = w.inspection["activations"]
    assert act["kind"] == "maps" and act["channels"] == 4 and (act["h"], act["w"]) == (8, 8)
    from_browser_update(w, selected="d1", sample_index=2)
    bars = w.inspection["activations"]
    assert bars["kind"] == "bars" and bars["units"] == 10
    # reference: the same forward pass written out with the layers' own weights
    ref = x[2:3]
    for la in m.layers[:4]:
        ref = la.forward(ref, training=False)
    np.testing.assert_allclose(bars["values"], np.asarray(ref)[0], rtol=1e-5, atol=1e-6)
    hist = w.inspection["weights"]["kernel"]
    kernel = m.layers[3].get_weights()[0]
    assert sum(hist["counts"]) == kernel.size
    assert hist["norm"] == pytest.approx(float(np.linalg.norm(kernel)), rel=1e-6)


class FakeHandle:
    """The parts of a running TrainingHandle the graph uses: running, edits, subscribe."""

    running = True

    def __init__(self, model):
        self.edits, self.listeners, self.step = [], [], 40
        model.observe(self._seen)

    def _seen(self, event):  # the trainer records every model edit as pending
        if event["type"] in ("edit", "insert", "remove", "undo"):
            self.edits.append({"kind": event["type"], "layer": event.get("layer"),
                               "requested_step": self.step, "applied_step": None})

    def subscribe(self, cb):
        self.listeners.append(cb)
        return lambda: self.listeners.remove(cb)

    def sync_boundary(self, step):
        for e in self.edits:
            if e["applied_step"] is None:
                e["applied_step"] = step
        for cb in self.listeners:
            cb("event", {"type": "edit"})


def test_edits_during_a_running_fit_are_pending_then_applied_at_a_step(sent):
    m = lenet_like()
    handle = FakeHandle(m)
    w = ModelGraph(m, handle=handle)
    out = sent(w)
    from_browser_custom(w, {"id": 9, "action": "edit", "layer": "d1", "values": {"units": "12"}})
    assert out.custom()[-1]["status"] == "pending"
    assert w.pending[-1]["status"] == "pending" and "d1" in w.pending[-1]["text"]
    assert node(w, "d1")["output_shape"] == "(12,)"  # the client model changed at once
    handle.sync_boundary(step=41)
    assert w.pending[-1] == {**w.pending[-1], "status": "applied", "step": 41}
    handle.running = False
    from_browser_custom(w, {"id": 10, "action": "undo"})
    assert out.custom()[-1]["status"] == "applied"


def test_a_non_model_is_refused_with_a_clear_message():
    expected = r"needs a mao_lab.Sequential .*received list without \['graph', 'observe', 'edit'"
    with pytest.raises(ConfigError, match=expected):
        ModelGraph([Dense(3)])
