"""Save/load: identical predictions and optimizer state after a round trip; corrupt and
mismatched files refused with the tensor name and both shapes; no pickle anywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import mao_lab
from mao_lab import Sequential
from mao_lab.errors import SerializationError
from mao_lab.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from mao_lab.optimizers import SGD


def trained(tmp_path):
    m = Sequential([Conv2D(3, 3, activation="relu", name="c"), BatchNorm(name="bn"),
                    MaxPool2D(2), Flatten(), Dropout(0.2, seed=1),
                    Dense(4, activation="softmax", name="d")], input_shape=(1, 8, 8), seed=0)
    m.compile(optimizer=SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 4, 32)
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "model.safetensors"
    m.save(path)
    return m, x, y, path


def test_round_trip_identical_predictions_and_state(tmp_path):
    m, x, y, path = trained(tmp_path)
    m2 = mao_lab.load_model(path)
    assert m2.get_config() == m.get_config()
    assert m2.get_compile_config() == m.get_compile_config()
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    for a, b in zip(m2.optimizer.get_state(), m.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
    # one more identical step on both: optimizer state really continues
    m.train_on_batch(x[:8], y[:8])
    m2.train_on_batch(x[:8], y[:8])
    for a, b in zip(m2.get_weights(), m.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_file_is_plain_safetensors_with_json_architecture(tmp_path):
    m, _, _, path = trained(tmp_path)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert json.loads(meta["model_config"]) == m.get_config()
    assert "weights/c/kernel" in keys and "weights/bn/moving_mean" in keys
    assert "optimizer/d/kernel/velocity" in keys and "optimizer/iterations" in keys
    assert b"pickle" not in path.read_bytes()[:200]


def test_mismatched_tensor_refused_with_name_and_shapes(tmp_path):
    m, _, _, path = trained(tmp_path)
    with safe_open(str(path), framework="numpy") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors["weights/d/kernel"] = np.zeros((5, 4), np.float32)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(SerializationError,
                       match=r"'weights/d/kernel' has shape \(5, 4\) but the architecture "
                             r"expects \(27, 4\)"):
        mao_lab.load_model(bad)
    del tensors["weights/d/kernel"]
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(SerializationError, match="'weights/d/kernel' is missing"):
        mao_lab.load_model(bad)


def test_corrupt_and_foreign_files_refused(tmp_path):
    _, _, _, path = trained(tmp_path)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(SerializationError, match="corrupt or truncated"):
        mao_lab.load_model(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(SerializationError, match="not a readable safetensors file"):
        mao_lab.load_model(tmp_path / "junk.safetensors")
    save_file({"x": np.zeros(2, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SerializationError, match="not a mao_lab model file"):
        mao_lab.load_model(tmp_path / "other.safetensors")
    with pytest.raises(SerializationError, match="no such model file"):
        mao_lab.load_model(tmp_path / "missing.safetensors")


def test_weights_only_round_trip_and_wrong_model(tmp_path):
    m, x, _, _ = trained(tmp_path)
    m.save_weights(tmp_path / "w.safetensors")
    m2 = Sequential.from_config(m.get_config(), seed=9)
    m2.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    other = Sequential([Dense(2, name="d")], input_shape=(3,))
    before = other.get_weights()
    with pytest.raises(SerializationError, match="weights/d/kernel"):
        other.load_weights(tmp_path / "w.safetensors")
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)
