"""Live edits: weights (and optimizer state) kept where parameter shapes did not change,
refused edits leave the model identical, undo, Net2Net widening preserves predictions."""

from __future__ import annotations

import numpy as np
import pytest

from mao_lab import Sequential
from mao_lab.errors import EditError
from mao_lab.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from mao_lab.optimizers import SGD

X = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 24)


def model():
    m = Sequential([Dense(6, activation="relu", name="a"), Dense(5, activation="tanh", name="b"),
                    Dense(4, activation="relu", name="c"), Dense(3, activation="softmax",
                                                                 name="out")],
                   input_shape=(4,), seed=0)
    m.compile(optimizer=SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    m.fit(X, Y, batch_size=8, epochs=1, verbose=0)  # non-zero velocities
    return m


def weights(m):
    return {f"{la.name}/{n}": np.array(a) for la in m.layers for n, a in la.params.items()}


def slots(m):
    return {k: np.array(v["velocity"]) for k, v in m.optimizer.slots.items()}


def snapshot(m):
    return m.get_config(), m.get_weights(), slots(m)


def assert_same(m, snap):
    cfg, ws, sl = snap
    assert m.get_config() == cfg
    for a, b in zip(m.get_weights(), ws, strict=True):
        np.testing.assert_array_equal(a, b)
    assert slots(m).keys() == sl.keys()
    for k in sl:
        np.testing.assert_array_equal(slots(m)[k], sl[k])


def test_edit_units_keeps_unaffected_layers_and_their_optimizer_state():
    m = model()
    w0, s0 = weights(m), slots(m)
    m.edit("b", units=7)
    w1, s1 = weights(m), slots(m)
    assert m.get_layer("b").units == 7 and m.get_layer("c").input_shape == (7,)
    for k in ("a/kernel", "a/bias", "out/kernel", "out/bias"):
        np.testing.assert_array_equal(w1[k], w0[k])
        np.testing.assert_array_equal(s1[k], s0[k])
    np.testing.assert_array_equal(w1["c/bias"], w0["c/bias"])  # (4,) unchanged: kept
    np.testing.assert_array_equal(s1["c/bias"], s0["c/bias"])
    assert w1["b/kernel"].shape == (6, 7) and w1["c/kernel"].shape == (7, 4)
    assert not s1["b/kernel"].any() and not s1["c/kernel"].any()  # fresh state
    m.fit(X, Y, epochs=1, verbose=0)


def test_edit_activation_keeps_every_weight():
    m = model()
    w0, s0 = weights(m), slots(m)
    m.edit(1, activation="sigmoid")
    assert m.layers[1].activation == "sigmoid"
    for k in w0:
        np.testing.assert_array_equal(weights(m)[k], w0[k])
        np.testing.assert_array_equal(slots(m)[k], s0[k])


def test_insert_remove_replace():
    m = model()
    w0 = weights(m)
    m.insert(2, Dropout(0.5, name="drop"))
    assert [la.name for la in m.layers] == ["a", "b", "drop", "c", "out"]
    for k in w0:
        np.testing.assert_array_equal(weights(m)[k], w0[k])
    m.remove("drop")
    m.insert(1, Dense(6, activation="relu", name="extra"))  # same width: b keeps its weights
    np.testing.assert_array_equal(weights(m)["b/kernel"], w0["b/kernel"])
    m.replace("c", Dense(4, activation="tanh", name="c2"))
    assert [la.name for la in m.layers] == ["a", "extra", "b", "c2", "out"]
    np.testing.assert_array_equal(weights(m)["out/kernel"], w0["out/kernel"])
    assert m.evaluate(X, Y)["loss"] > 0


@pytest.mark.parametrize("action,msg", [
    (lambda m: m.edit("b", units=-3), "Dense: units must be a positive integer"),
    (lambda m: m.edit("b", unitz=3), "has no option 'unitz'"),
    (lambda m: m.edit("nope", units=3), "no layer named 'nope'"),
    (lambda m: m.edit("out", activation="relu"), "expects probabilities from a softmax"),
    (lambda m: m.edit("b", name="a"), "already exists"),
    (lambda m: m.insert(1, Dense(3, name="c")), "already exists"),
    (lambda m: m.insert(9, Dense(3)), "index must be an int in [0, 4]"),
    (lambda m: m.insert(1, Flatten()), None),
    (lambda m: m.insert(1, Conv2D(2, 3)), "(channels, height, width)"),
    (lambda m: m.replace("a", "not a layer"), "expected a mao_lab.layers.Layer"),
    (lambda m: m.widen_dense("out", 5), "softmax"),
    (lambda m: m.widen_dense("b", 3), "larger than the current 5"),
])
def test_refused_edits_leave_model_identical(action, msg):
    m = model()
    snap = snapshot(m)
    events = []
    m.observe(events.append)
    if msg is None:  # Flatten on (6,) is a valid no-op edit; undo makes it identical again
        action(m)
        m.undo()
        assert [e["type"] for e in events] == ["insert", "undo"]
    else:
        with pytest.raises(EditError) as err:
            action(m)
        assert msg in str(err.value) and "unchanged" in str(err.value)
        assert events == []
    assert_same(m, snap)


def test_conv_edit_refused_when_kernel_outgrows_input():
    m = Sequential([Conv2D(2, 3, name="c1"), MaxPool2D(2), Conv2D(2, 2, name="c2"), Flatten(),
                    Dense(2, name="d")], input_shape=(1, 8, 8), seed=0)
    before = m.get_config(), m.get_weights()
    with pytest.raises(EditError, match="window .4, 4. is larger than the input"):
        m.edit("c2", kernel_size=4)
    assert m.get_config() == before[0]
    for a, b in zip(m.get_weights(), before[1]):
        np.testing.assert_array_equal(a, b)


def test_undo_restores_structure_and_weights():
    m = model()
    snap = snapshot(m)
    m.edit("b", units=9)
    m.remove("c")
    m.undo()
    m.undo()
    assert_same(m, snap)
    with pytest.raises(EditError, match="no edit to undo"):
        m.undo()


def test_widen_dense_preserves_predictions():
    m = model()
    before = m.predict(X)
    events = []
    m.observe(events.append)
    m.widen_dense("b", 11)
    assert m.get_layer("b").units == 11 and m.get_layer("c").input_shape == (11,)
    np.testing.assert_allclose(m.predict(X), before, rtol=1e-5, atol=1e-6)
    assert events[-1]["type"] == "edit" and events[-1]["changes"] == {"units": 11}
    m.fit(X, Y, epochs=1, verbose=0)


def test_widen_through_dropout_and_without_preservation():
    m = Sequential([Dense(4, activation="relu", name="h"), Dropout(0.3), Dense(2, name="o")],
                   input_shape=(4,), seed=0)
    before = m.predict(X)
    m.widen_dense("h", 6)
    np.testing.assert_allclose(m.predict(X), before, rtol=1e-5, atol=1e-6)
    w = m.get_weights()
    m.widen_dense("h", 8, preserve_function=False)
    np.testing.assert_array_equal(m.get_weights()[0][:, :6], w[0])
    with pytest.raises(EditError, match="needs a Dense layer after 'o'"):
        m.widen_dense("o", 3)


def test_edit_from_another_thread_while_fit_runs():
    import threading

    m = model()
    done = threading.Event()
    outcome = {}

    class EditMidway(__import__("mao_lab").callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1 and "t" not in outcome:
                def worker():
                    try:
                        m.edit("b", units=9)
                        m.edit("out", units=4)
                    except EditError as exc:
                        outcome["err"] = str(exc)
                    done.set()

                outcome["t"] = threading.Thread(target=worker)
                outcome["t"].start()
                done.wait(5)

    m.fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[EditMidway()])
    assert m.get_layer("b").units == 9  # applied between two steps; training went on
    assert "while fit is running" in outcome["err"] and m.get_layer("out").units == 3
    assert np.isfinite(m.evaluate(X, Y)["loss"])
