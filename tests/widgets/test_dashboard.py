"""TrainingDashboard: curves from a real single-process fit through the Callback, progress,
ETA, downsampling and the stop button."""

from __future__ import annotations

import numpy as np
import pytest
from _drive import from_browser_custom

from mao_lab.callbacks import Callback
from mao_lab.errors import ConfigError
from mao_lab.widgets import TrainingDashboard
from mao_lab.widgets.dashboard import downsample, eta_seconds


def test_downsample_and_eta():
    pts = [[i, float(i)] for i in range(1000)]
    d = downsample(pts, 400)
    assert len(d) == 400 and d[0] == [0, 0.0] and d[-1] == [999, 999.0]
    assert downsample(pts[:5]) == pts[:5]
    with pytest.raises(ConfigError):
        downsample(pts, 1)
    assert eta_seconds(10.0, 0.25) == pytest.approx(30.0)
    assert eta_seconds(0.0, 0.0) is None


def test_callback_hooks_build_train_and_validation_series():
    dash = TrainingDashboard(max_rate=1e6)
    cb = dash.callback()
    cb.on_train_begin({"epochs": 2, "steps": 3})
    for epoch in range(2):
        cb.on_epoch_begin(epoch)
        for b in range(3):
            cb.on_batch_end(b, {"loss": 1.0 / (epoch * 3 + b + 1), "accuracy": 0.5, "size": 8})
        cb.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.6 - epoch * 0.1, "val_accuracy": 0.7})
    cb.on_train_end({})
    assert [p[0] for p in dash.series["loss"]] == [1, 2, 3, 4, 5, 6]
    assert dash.series["loss"][-1][1] == pytest.approx(1 / 6)
    assert dash.series["val_loss"] == [[3, 0.6], [6, pytest.approx(0.5)]]
    assert "size" not in dash.series
    assert dash.status == "done" and dash.progress["fraction"] == 1.0


def test_real_fit_feeds_the_dashboard_and_stop_ends_training():
    from mao_lab.layers import Dense
    from mao_lab.model import Sequential

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([Dense(8, activation="relu"), Dense(2, activation="softmax")],
                       input_shape=(4,))
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    dash = TrainingDashboard(max_rate=1e6)

    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            from_browser_custom(dash, {"id": "s", "action": "stop"})

    hist = model.fit(x, y, batch_size=16, epochs=5, validation_data=(x, y), verbose=0,
                     callbacks=[dash.callback(), StopAfterFirstEpoch()])
    assert len(hist.history["loss"]) == 1  # stopped cleanly after the first epoch
    assert len(dash.series["loss"]) == 4 and len(dash.series["val_loss"]) == 1
    assert dash.series["val_loss"][0][1] == pytest.approx(hist.history["val_loss"][0])
    assert dash.status == "done"


def test_distributed_batch_numbers_are_global_steps():
    dash = TrainingDashboard(max_rate=1e6)
    cb = dash.callback()
    cb.on_train_begin({"epochs": 2, "steps": 4, "engines": [0, 1]})
    for epoch in range(2):
        cb.on_epoch_begin(epoch)
        for step in range(epoch * 4 + 2, epoch * 4 + 5, 2):  # rounds of 2 steps
            cb.on_batch_end(step, {"loss": 1.0, "size": 64})
        cb.on_epoch_end(epoch, {"loss": 1.0, "val_loss": 0.9, "exactly_once": True})
    assert [p[0] for p in dash.series["loss"]] == [2, 4, 6, 8]
    assert [p[0] for p in dash.series["val_loss"]] == [4, 8]
    assert "exactly_once" not in dash.series
    cb.on_train_end({})
    assert dash.progress["fraction"] == 1.0
