"""Sequential: building, weights, config, summary, graph, observers, fit/evaluate/predict,
bad input, divergence, determinism, callbacks and the data-parallel gradient API."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mao_lab
from mao_lab import Sequential
from mao_lab.callbacks import Callback, EarlyStopping, ModelCheckpoint
from mao_lab.errors import ConfigError, DataError, ModelError, ShapeError, TrainingError
from mao_lab.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from mao_lab.optimizers import SGD


def mlp(seed=0, out_act="softmax", **kw):
    return Sequential([Dense(8, activation="relu", name="h"),
                       Dense(3, activation=out_act, name="out")], input_shape=(4,), seed=seed,
                      **kw)


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)).astype(np.float32) * 0.3
    x[np.arange(n), y] += 2.0
    return x, y


def test_build_shapes_counts_and_keras_layouts():
    m = Sequential([Conv2D(4, 3, name="c"), MaxPool2D(2), Flatten(), Dense(5, name="d")],
                   input_shape=(1, 8, 8), seed=0)
    assert [la.output_shape for la in m.layers] == [(4, 6, 6), (4, 3, 3), (36,), (5,)]
    assert [w.shape for w in m.get_weights()] == [(4, 1, 3, 3), (4,), (36, 5), (5,)]
    assert m.count_params() == 4 * 9 + 4 + 36 * 5 + 5
    assert m.trainable_weight_names() == ["c/kernel", "c/bias", "d/kernel", "d/bias"]


def test_deferred_build_on_fit_and_wrong_rank():
    m = Sequential([Dense(3, activation="softmax")], seed=0)
    assert not m.built
    m.compile(loss="sparse_categorical_crossentropy")
    x, y = blobs()
    m.fit(x, y, epochs=1, verbose=0)
    assert m.input_shape == (4,)
    with pytest.raises(ShapeError, match=r"expects x of shape \(None, 4\); received \(60, 4, 1\)"):
        m.fit(x[..., None], y, verbose=0)


def test_summary_text_and_html():
    m = mlp()
    text = m.summary_text()
    assert 'Model: "' in text and "h (Dense)" in text and "(None, 8)" in text
    assert "Total params: 67" in text and "Trainable params: 67" in text
    assert "Non-trainable params: 0" in text
    lines = []
    m.summary(print_fn=lines.append)
    assert lines == [text]
    assert "<table>" in m._repr_html_() and "out (Dense)" in m._repr_html_()


def test_graph_nodes_and_edges():
    g = mlp().graph
    assert list(g.nodes) == ["input", "h", "out"]
    assert g.nodes["h"]["params"] == 40 and g.nodes["out"]["output_shape"] == (3,)
    assert g.nodes["h"]["class_name"] == "Dense" and g.nodes["h"]["device"] == "numpy"
    assert g.edges["input", "h"]["shape"] == (4,) and g.edges["h", "out"]["shape"] == (8,)


def test_config_round_trip_and_weights():
    m = mlp()
    cfg = json.loads(json.dumps(m.get_config()))
    m2 = Sequential.from_config(cfg)
    assert m2.get_config() == m.get_config()
    m2.set_weights(m.get_weights())
    x, _ = blobs()
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    with pytest.raises(ShapeError, match=r"h/kernel expects shape \(4, 8\); received \(8, 4\)"):
        m2.set_weights([w.T for w in m.get_weights()])


def test_observers_fire_and_unsubscribe():
    m = mlp()
    events = []
    off = m.observe(events.append)
    m.compile(loss="sparse_categorical_crossentropy")
    m.set_weights(m.get_weights())
    m.add(Dense(2, name="extra"))
    m.pop()
    off()
    m.pop()
    assert [e["type"] for e in events] == ["compile", "weights", "insert", "remove"]


def test_compile_validates_names():
    m = mlp()
    with pytest.raises(ConfigError, match="unknown loss 'foo'; expected one of mse"):
        m.compile(loss="foo")
    with pytest.raises(ConfigError, match="unknown optimizer 'sgdd'"):
        m.compile(optimizer="sgdd")
    with pytest.raises(ConfigError, match="unknown metric 'f1'"):
        m.compile(metrics=["f1"])
    with pytest.raises(ConfigError, match="expects probabilities from a softmax last layer"):
        mlp(out_act="relu").compile(loss="categorical_crossentropy")
    assert not m.compiled


def test_fit_before_compile_and_bad_inputs():
    m = mlp()
    x, y = blobs()
    with pytest.raises(ModelError, match="must be compiled first"):
        m.fit(x, y)
    m.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(DataError, match="x has 60 samples but y has 59"):
        m.fit(x, y[:-1], verbose=0)
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(DataError, match="NaN or inf .first at sample 7"):
        m.fit(bad, y, verbose=0)
    with pytest.raises(DataError, match=r"class ids must be in \[0, 3\)"):
        m.fit(x, y + 1, verbose=0)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        m.fit(x, y, batch_size=0)
    with pytest.raises(ConfigError, match="validation_split must be in"):
        m.fit(x, y, validation_split=1.0)


def test_training_learns_and_softmax_predictions():
    m = mlp()
    m.compile(optimizer=SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    x, y = blobs(200)
    h = m.fit(x, y, batch_size=16, epochs=8, verbose=0, seed=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    res = m.evaluate(x, y)
    assert res["accuracy"] > 0.95
    p = m.predict(x)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    assert (p.argmax(1) == y).mean() == pytest.approx(res["accuracy"])


def test_fused_softmax_ce_gradient_is_exact():
    m = Sequential([Dense(3, activation="softmax", name="o")], input_shape=(4,), seed=0)
    m.compile(loss="categorical_crossentropy")
    x, y = blobs(10)
    t = np.eye(3, dtype=np.float32)[y]
    loss, grads = m.compute_gradients(x, t)
    w, b = (a.astype(np.float64) for a in m.get_weights())
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss == pytest.approx(-(t * np.log(p)).sum(1).mean(), rel=1e-5)
    np.testing.assert_allclose(grads[0], x.T @ (p - t) / 10, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads[1], (p - t).mean(0), rtol=1e-4, atol=1e-6)


def test_apply_gradients_matches_train_on_batch():
    a, b = mlp(seed=3), mlp(seed=3)
    for m in (a, b):
        m.compile(optimizer=SGD(0.2, momentum=0.5), loss="sparse_categorical_crossentropy")
    x, y = blobs(16)
    for _ in range(2):
        _, g = a.compute_gradients(x, y)
        a.apply_gradients(g)
        b.train_on_batch(x, y)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    with pytest.raises(ShapeError, match="expected 4 gradients"):
        a.apply_gradients(g[:2])


def test_same_seed_same_weights_and_dropout():
    def run():
        m = Sequential([Dense(16, activation="relu"), Dropout(0.3), Dense(3, activation="softmax")],
                       input_shape=(4,), seed=11)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(*blobs(), batch_size=8, epochs=2, verbose=0, seed=5)
        return m.get_weights()

    for wa, wb in zip(run(), run()):
        np.testing.assert_array_equal(wa, wb)


def test_divergence_stops_with_last_good_weights():
    m = Sequential([Dense(1, name="lin")], input_shape=(4,), seed=0)
    m.compile(optimizer=SGD(1e4), loss="mse", metrics=[])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32) * 100
    with pytest.raises(TrainingError, match="diverged at epoch 1, batch .*Lower the learning"):
        m.fit(x, x.sum(1), batch_size=8, epochs=3, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())


def test_validation_split_takes_last_fraction_and_history():
    m = mlp()
    m.compile(loss="sparse_categorical_crossentropy")
    x, y = blobs(50)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(logs["size"])

    h = m.fit(x, y, batch_size=10, epochs=2, validation_split=0.2, verbose=0, callbacks=[Spy()])
    assert sum(seen) == 2 * 40 and set(h.history) == {"loss", "accuracy", "val_loss",
                                                        "val_accuracy"}
    assert h.history["val_loss"][-1] == pytest.approx(m.evaluate(x[40:], y[40:])["loss"])
    assert m.history is h and h.epoch == [0, 1]


def test_early_stopping_and_checkpoint(tmp_path):
    m = mlp()
    m.compile(optimizer=SGD(1e-6), loss="sparse_categorical_crossentropy")
    x, y = blobs(40)
    es = EarlyStopping(monitor="loss", min_delta=1.0, patience=1)
    ck = ModelCheckpoint(str(tmp_path / "m-{epoch}.safetensors"), monitor="loss")
    h = m.fit(x, y, epochs=10, verbose=0, callbacks=[es, ck])
    assert len(h.epoch) == 3 and es.stopped_epoch == 2
    assert [p.rsplit("/", 1)[-1] for p in ck.saved] == ["m-1.safetensors", "m-2.safetensors",
                                                        "m-3.safetensors"]
    with pytest.raises(ConfigError, match="monitors 'val_loss'"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])


def test_progress_bar_verbose_1(capsys):
    m = mlp()
    m.compile(loss="sparse_categorical_crossentropy")
    m.fit(*blobs(40), batch_size=10, epochs=1, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "4/4" in err and "loss=" in err


def test_dataset_duck_type():
    x, y = blobs(30)

    class FakeDataset:
        def numpy(self):
            return x, y

        def batches(self, *a, **k):
            raise AssertionError("not used")

    m = mlp()
    m.compile(loss="sparse_categorical_crossentropy")
    m.fit(FakeDataset(), epochs=1, verbose=0)
    assert m.evaluate(FakeDataset())["loss"] == pytest.approx(m.evaluate(x, y)["loss"])
    with pytest.raises(DataError, match="carries its labels"):
        m.fit(FakeDataset(), y)


def test_learning_rate_changes_between_steps():
    m = Sequential([Dense(1, use_bias=False, kernel_initializer="zeros")], input_shape=(1,))
    m.compile(optimizer=SGD(0.5), loss="mse", metrics=[])
    x, t = np.ones((1, 1), np.float32), np.ones((1, 1), np.float32)
    m.train_on_batch(x, t)  # grad of (w - 1)^2 at w=0 is -2: w = 0 + 0.5 * 2
    assert m.get_weights()[0][0, 0] == pytest.approx(1.0)
    m.optimizer.learning_rate = 0.25
    m.train_on_batch(x, 3 * t)  # grad -4 at w=1: w = 1 + 0.25 * 4
    assert m.get_weights()[0][0, 0] == pytest.approx(2.0)


def test_mse_sum_and_one_hot_of_integer_labels():
    m = Sequential([Dense(3, name="o")], input_shape=(2,), seed=0)
    m.compile(loss=mao_lab.losses.MeanSquaredError("sum"), metrics=["accuracy"])
    x = np.array([[1, 0], [0, 1]], np.float32)
    out = m.predict(x)
    t = np.eye(3, dtype=np.float32)[[2, 0]]
    assert m.evaluate(x, [2, 0], batch_size=2)["loss"] == pytest.approx(
        ((out - t) ** 2).sum(), rel=1e-5)


def test_validation_split_warns_on_label_sorted_data(caplog):
    m = mlp()
    m.compile(loss="sparse_categorical_crossentropy")
    x, y = blobs(60)
    order = np.argsort(y, kind="stable")
    with caplog.at_level("WARNING", logger="mao_lab._training"):
        m.fit(x[order], y[order], epochs=1, validation_split=0.2, verbose=0)
    assert "holds out the LAST 12 samples" in caplog.text and "only classes [2]" in caplog.text


def test_fit_with_cluster_hands_off_to_data_parallel(monkeypatch):
    import mao_lab.distributed.trainer as trainer

    calls = {}

    class FakeDataParallel:
        def __init__(self, model, cluster, **kwargs):
            calls["init"] = (model, cluster, kwargs)

        def fit(self, x, y, **kwargs):
            calls["fit"] = (x, y, kwargs)
            return "history"

    monkeypatch.setattr(trainer, "DataParallel", FakeDataParallel)
    m = mlp()
    m.compile(loss="sparse_categorical_crossentropy")
    x, y = blobs(10)
    assert m.fit(x, y, batch_size=5, epochs=2, cluster="C", strategy="ps") == "history"
    assert calls["init"] == (m, "C", {"strategy": "ps"})
    assert calls["fit"][2]["batch_size"] == 5 and calls["fit"][2]["epochs"] == 2
    with pytest.raises(ConfigError, match="only accepted together with cluster="):
        m.fit(x, y, strategy="ps")


def test_divergence_closes_progress_bar_and_keeps_history(capsys):
    m = Sequential([Dense(1, name="lin")], input_shape=(4,), seed=0)
    m.compile(optimizer=SGD(1e4), loss="mse", metrics=[])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 100
    with pytest.raises(TrainingError):
        m.fit(x, x.sum(1), batch_size=8, epochs=3, verbose=1)
    assert m.history is not None and m.history.epoch == []
    assert "Epoch 1/3" in capsys.readouterr().err
