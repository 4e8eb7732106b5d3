"""Every layer through one shared helper: output shape vs compute_output_shape, backward vs
float64 central finite differences (numpy backend), OpenCL vs numpy forward/backward (when
an OpenCL device exists), and the config round trip through the registry.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mao_lab import get_backend
from mao_lab.errors import ConfigError, ShapeError
from mao_lab.layers import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Reshape,
    deserialize,
    serialize,
)

NP = get_backend("numpy")


def _opencl():
    try:
        return get_backend("opencl")
    except Exception:  # noqa: BLE001 - no OpenCL device on this machine
        return None


def _built(cls, cfg, input_shape, be, seed=0):
    layer = cls.from_config(cfg)
    layer.be, layer.rng = be, np.random.default_rng(seed)
    layer.build(input_shape)
    return layer


def _run(layer, x, dy, training=True):
    """forward (fresh dropout offset) then backward; returns y, dx, grads (host copies)."""
    if hasattr(layer, "step_offset"):
        layer.step_offset = 0
    be = layer.be
    y = layer.forward(be.asarray(x, dtype=x.dtype), training=training)
    layer.zero_grads()
    dx = layer.backward(be.asarray(dy, dtype=dy.dtype))
    grads = {k: np.array(be.to_host(g)) for k, g in layer.grads.items()}
    return np.array(be.to_host(y)), np.array(be.to_host(dx)), grads


def check_layer(cls, cfg: dict, input_shape: tuple, batch: int = 3, fd_points: int = 40,
                device: str = "numpy"):
    """The shared layer test; raises AssertionError with the failing quantity.

    device="numpy": config round trip, output shape, float64 finite differences.
    device="opencl": the same forward/backward on OpenCL against numpy in float32; skips
    (naming the primitive) only while the OpenCL backend lacks a primitive the layer uses.
    """
    rng = np.random.default_rng(1)
    # --- config round trip (exactly the __init__ kwargs) and the registry
    layer = cls(**cfg)
    conf = layer.get_config()
    assert cls.from_config(conf).get_config() == conf
    again = deserialize(json.loads(json.dumps(serialize(layer))))
    assert type(again) is cls and again.get_config() == conf

    # --- float64 on numpy: output shape and finite differences
    lay = _built(cls, conf, input_shape, NP)
    for d in (lay.params, lay.grads, lay.state):
        for k in d:
            d[k] = d[k].astype(np.float64)
    expected = lay.compute_output_shape(input_shape)
    assert tuple(lay.output_shape) == tuple(expected)
    x = rng.standard_normal((batch,) + tuple(input_shape))
    y, dx, grads = _run(lay, x, np.zeros((batch,) + tuple(expected)))
    assert y.shape == (batch,) + tuple(expected), (y.shape, expected)
    r = rng.standard_normal(y.shape)
    _, dx, grads = _run(lay, x, r)

    def loss() -> float:
        if hasattr(lay, "step_offset"):
            lay.step_offset = 0
        return float((lay.forward(x, training=True) * r).sum())

    eps = 1e-6
    targets = [("x", x, dx)] + [(k, lay.params[k], grads[k]) for k in lay.params]
    for name, arr, analytic in targets:
        flat = arr.reshape(-1)
        picks = rng.choice(flat.size, size=min(fd_points, flat.size), replace=False)
        for i in picks:
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            got = analytic.reshape(-1)[i]
            assert abs(numeric - got) <= 1e-5 + 1e-4 * abs(numeric), (
                f"{cls.__name__} d{name}[{i}]: analytic {got} vs numeric {numeric}")

    if device == "numpy":
        return
    # --- OpenCL against numpy in float32, forward and backward
    cl = _opencl()
    if cl is None:
        pytest.skip("no OpenCL device on this machine")
    ref = _built(cls, conf, input_shape, NP, seed=5)
    dev = _built(cls, conf, input_shape, cl, seed=5)
    x32 = x.astype(np.float32)
    r32 = r.astype(np.float32)
    want = _run(ref, x32, r32)
    try:
        got = _run(dev, x32, r32)
    except (NotImplementedError, AttributeError) as exc:
        pytest.skip(f"OpenCL backend lacks a primitive {cls.__name__} needs: {exc}")
    for what, a, b in (("forward", want[0], got[0]), ("dx", want[1], got[1])):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=f"OpenCL {what}")
    for k in want[2]:
        np.testing.assert_allclose(got[2][k], want[2][k], rtol=1e-4, atol=1e-4,
                                   err_msg=f"OpenCL grad {k}")


CASES = [
    (Dense, {"units": 5}, (7,)),
    (Dense, {"units": 4, "activation": "relu"}, (6,)),
    (Dense, {"units": 4, "activation": "sigmoid", "use_bias": False}, (5,)),
    (Dense, {"units": 3, "activation": "tanh", "kernel_initializer": "he_normal"}, (5,)),
    (Dense, {"units": 4, "activation": "softmax"}, (6,)),
    (Conv2D, {"filters": 3, "kernel_size": 3}, (2, 7, 6)),
    (Conv2D, {"filters": 4, "kernel_size": (3, 2), "strides": 2, "padding": "same",
              "activation": "relu"}, (3, 9, 8)),
    (Conv2D, {"filters": 2, "kernel_size": 5, "padding": "same", "activation": "tanh"},
     (1, 6, 5)),
    (MaxPool2D, {"pool_size": 2}, (2, 6, 6)),
    (MaxPool2D, {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 7, 7)),
    (AvgPool2D, {"pool_size": 2}, (2, 6, 4)),
    (AvgPool2D, {"pool_size": (3, 2), "strides": (2, 1), "padding": "same"}, (1, 7, 5)),
    (Flatten, {}, (2, 3, 4)),
    (Reshape, {"target_shape": (2, 6)}, (12,)),
    (Reshape, {"target_shape": (-1, 2, 2)}, (3, 4)),
    (Dropout, {"rate": 0.4, "seed": 3}, (10,)),
    (Activation, {"activation": "relu"}, (6,)),
    (Activation, {"activation": "sigmoid"}, (2, 3, 3)),
    (Activation, {"activation": "tanh"}, (5,)),
    (Activation, {"activation": "softmax"}, (5,)),
    (BatchNorm, {}, (5,)),
    (BatchNorm, {"momentum": 0.9, "epsilon": 1e-2}, (3, 4, 4)),
]


@pytest.mark.parametrize("device", ["numpy", "opencl"])
@pytest.mark.parametrize("cls,cfg,shape", CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_layer(cls, cfg, shape, device):
    check_layer(cls, cfg, shape, batch=4 if cls is BatchNorm else 3, device=device)


def test_dropout_is_deterministic_and_scaled():
    a = _built(Dropout, {"rate": 0.5, "seed": 7}, (1000,), NP)
    x = np.ones((2, 1000), np.float32)
    y1 = a.forward(x, training=True)
    y2 = a.forward(x, training=True)  # the step counter moved: a new mask
    assert set(np.unique(y1)) <= {0.0, 2.0} and 0.4 < (y1 == 0).mean() < 0.6
    assert not np.array_equal(y1, y2)
    b = _built(Dropout, {"rate": 0.5, "seed": 7}, (1000,), NP)
    np.testing.assert_array_equal(b.forward(x, training=True), y1)


def test_batchnorm_inference_uses_moving_statistics():
    bn = _built(BatchNorm, {"momentum": 0.5}, (2,), NP)
    x = np.array([[0.0, 10.0], [2.0, 14.0]], np.float32)
    bn.forward(x, training=True)
    mm, mv = bn.get_weights()[2:]
    np.testing.assert_allclose(mm, 0.5 * x.mean(0))
    np.testing.assert_allclose(mv, 0.5 + 0.5 * x.var(0))
    y = bn.forward(x, training=False)
    np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + 1e-3), rtol=1e-5)


def test_conv_matches_direct_float64_reference():
    c = _built(Conv2D, {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
               (1, 5, 5), NP)
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
    w, b = c.get_weights()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.array([[[(xp[0, 0, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * w[f, 0]).sum() + b[f]
                      for j in range(3)] for i in range(3)] for f in range(2)])
    np.testing.assert_allclose(c.forward(x)[0], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,msg", [
    (lambda: Dense(-3), "Dense: units must be a positive integer. Received: units=-3"),
    (lambda: Dense(0), "Received: units=0"),
    (lambda: Dense(3, activation="swish"), "Received: activation='swish'"),
    (lambda: Dense(3, kernel_initializer="nope"), "kernel_initializer"),
    (lambda: Conv2D(4, 0), "kernel_size"),
    (lambda: Conv2D(4, 3, padding="full"), "padding"),
    (lambda: MaxPool2D(pool_size=(2, -1)), "pool_size"),
    (lambda: Dropout(1.0), "rate must be a number in [0, 1)"),
    (lambda: Reshape((2, -1, -1)), "target_shape"),
    (lambda: BatchNorm(momentum=1.5), "momentum"),
    (lambda: Dense(3, name="a/b"), "name"),
])
def test_invalid_hyperparameters(make, msg):
    with pytest.raises(ConfigError) as err:
        make()
    assert msg in str(err.value)


@pytest.mark.parametrize("layer,shape,msg", [
    (Conv2D(2, 5), (1, 3, 3), "window (5, 5) is larger than the input"),
    (MaxPool2D(4), (1, 3, 8), "larger than the input"),
    (Dense(3), (1, 28, 28), "Add a Flatten()"),
    (Conv2D(2, 3), (10,), "(channels, height, width)"),
    (Reshape((5, 5)), (12,), "cannot reshape input (12,)"),
])
def test_incompatible_input_shapes_name_layer_and_shape(layer, shape, msg):
    with pytest.raises(ShapeError) as err:
        layer.build(shape)
    assert msg in str(err.value) and layer.name in str(err.value)


def test_unknown_config_key_and_class():
    with pytest.raises(ConfigError, match="unknown config keys"):
        Dense.from_config({"units": 3, "unitz": 4})
    with pytest.raises(ConfigError, match="unknown layer class 'Dence'"):
        deserialize({"class_name": "Dence", "config": {}})
