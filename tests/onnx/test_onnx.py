"""ONNX export/import: ONNX Runtime agrees with mao_lab, round trips predict identically,
third-party graphs import, and what cannot be represented is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mao_lab import Sequential  # noqa: E402
from mao_lab import layers as L  # noqa: E402
from mao_lab.errors import SerializationError  # noqa: E402
from mao_lab.io import export_onnx, import_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def _run_ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _models():
    yield "mlp", (4,), [L.Dense(30, activation="sigmoid"), L.Dense(20, activation="sigmoid"),
                        L.Dense(3)]
    yield "lenet_like", (1, 28, 28), [
        L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Conv2D(16, 5, activation="tanh"), L.AvgPool2D(2), L.Flatten(),
        L.Dense(84, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax")]
    yield "strided_same_bn", (3, 13, 11), [
        L.Conv2D(4, 3, strides=2, padding="same", use_bias=False), L.BatchNorm(),
        L.Activation("relu"), L.MaxPool2D(3, strides=2, padding="same"),
        L.AvgPool2D(2, strides=1, padding="same"), L.Reshape((4 * 4 * 3,)),
        L.Dense(5), L.BatchNorm(), L.Activation("softmax")]


def _zoo_models():
    try:
        from mao_lab import zoo
    except ImportError:
        return []
    out = []
    for name in zoo.names():
        if "boost" in name:
            continue
        model = zoo.get(name)
        if isinstance(model, Sequential):
            out.append((f"zoo:{name}", model))
    return out


@pytest.mark.parametrize("name,shape,layers", list(_models()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_runtime_matches_and_round_trip(tmp_path, name, shape, layers):
    model = Sequential(layers, input_shape=shape, seed=1)
    _train_bn_stats(model, shape)
    x = RNG.random((5, *shape), dtype=np.float32)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    ours = model.predict(x)
    assert np.abs(_run_ort(path, x) - ours).max() < 1e-5
    again = import_onnx(path)
    assert [type(la).__name__ for la in again.layers] == [type(la).__name__ for la in
                                                           model.layers]
    np.testing.assert_array_equal(again.predict(x), ours)
    # dynamic batch size
    assert _run_ort(path, x[:1]).shape == (1, *model.layers[-1].output_shape)


def test_every_zoo_model_matches_runtime(tmp_path):
    models = _zoo_models()
    assert models, "mao_lab.zoo lists no model"
    for name, model in models:
        if not model.built:
            model.build(model.input_shape)
        x = RNG.random((3, *model.input_shape), dtype=np.float32)
        path = export_onnx(model, tmp_path / f"{name.replace(':', '_')}.onnx")
        assert np.abs(_run_ort(path, x) - model.predict(x)).max() < 1e-5, name
        np.testing.assert_array_equal(import_onnx(path).predict(x), model.predict(x))


def _train_bn_stats(model, shape):
    """Give BatchNorm non-trivial moving statistics so inference form is really tested."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNorm":
            c = layer.output_shape[0]
            layer.set_weights([RNG.random(c) + 0.5, RNG.standard_normal(c),
                               RNG.standard_normal(c), RNG.random(c) + 0.5])


def test_layers_named_like_graph_tensors_export(tmp_path):
    model = Sequential([L.Dense(4, name="input"), L.Dense(3, name="output", activation="softmax")],
                       input_shape=(5,), seed=0)
    x = RNG.random((2, 5), dtype=np.float32)
    path = export_onnx(model, tmp_path / "names.onnx")
    assert np.abs(_run_ort(path, x) - model.predict(x)).max() < 1e-6
    assert [la.name for la in import_onnx(path).layers] == ["input", "output"]


def test_metadata_and_names(tmp_path):
    model = Sequential([L.Dense(3)], input_shape=(4,), name="tiny", seed=0)
    proto = onnx.load(str(export_onnx(model, tmp_path / "t.onnx")))
    props = {p.key: p.value for p in proto.metadata_props}
    import mao_lab

    assert props["mao_lab_version"] == mao_lab.__version__
    assert proto.graph.input[0].name == "input"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


# ---- graphs built by a third party (PyTorch-style attributes) -------------------------
def _save(tmp_path, nodes, inits, in_shape, out_shape, name="third_party", opset=13):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT,
                                       ["N", *out_shape])],
        initializer=[numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f"
                                             else v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _third_party_cnn(tmp_path, **conv_attrs):
    inits = {
        "w1": RNG.standard_normal((4, 1, 5, 5)) * 0.3, "b1": RNG.standard_normal(4),
        "w2": RNG.standard_normal((10, 4 * 7 * 7)) * 0.1, "b2": RNG.standard_normal(10),
        "w3": RNG.standard_normal((10, 6)) * 0.3, "b3": RNG.standard_normal(6),
    }
    attrs = dict(kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[1, 1])
    if "auto_pad" in conv_attrs:  # ONNX forbids pads beside auto_pad
        del attrs["pads"]
    attrs.update(conv_attrs)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", **attrs),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("AveragePool", ["p1"], ["p2"], name="pool2", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["g"], name="fc1", transB=1),
        helper.make_node("Tanh", ["g"], ["t"], name="tanh"),
        helper.make_node("MatMul", ["t", "w3"], ["mm"], name="fc2"),
        helper.make_node("Add", ["mm", "b3"], ["a"], name="fc2_bias"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax", axis=1),
    ]
    return _save(tmp_path, nodes, inits, (1, 28, 28), (6,))


def test_third_party_graph_imports_and_matches_runtime(tmp_path):
    path = _third_party_cnn(tmp_path)
    model = import_onnx(path)
    assert [type(la).__name__ for la in model.layers] == [
        "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dense", "Dense"]
    assert model.layers[0].padding == "same" and model.layers[0].activation == "relu"
    assert model.layers[-1].activation == "softmax"
    x = RNG.random((4, 1, 28, 28), dtype=np.float32)
    assert np.abs(model.predict(x) - _run_ort(path, x)).max() < 1e-5


def test_imported_model_trains(tmp_path):
    model = import_onnx(_third_party_cnn(tmp_path))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = RNG.random((32, 1, 28, 28), dtype=np.float32)
    y = RNG.integers(0, 6, 32)
    before = model.evaluate(x, y)["loss"]
    model.fit(x, y, epochs=5, batch_size=8, verbose=0, seed=0)
    assert model.evaluate(x, y)["loss"] < before


@pytest.mark.parametrize("attrs,named", [
    ({"dilations": [2, 2]}, "dilations"),
    ({"group": 2}, "group"),
    ({"auto_pad": "SAME_LOWER"}, "auto_pad"),
    ({"pads": [1, 2, 3, 0]}, "pads"),
])
def test_unrepresentable_attributes_are_refused(tmp_path, attrs, named):
    with pytest.raises(SerializationError, match=rf"conv1.*{named}"):
        import_onnx(_third_party_cnn(tmp_path, **attrs))


def test_unsupported_op_is_named(tmp_path):
    nodes = [helper.make_node("Elu", ["x"], ["y"], name="weird_act")]
    path = _save(tmp_path, nodes, {}, (4,), (4,))
    with pytest.raises(SerializationError, match=r"'Elu'.*weird_act"):
        import_onnx(path)


def test_non_chain_graph_is_refused(tmp_path):
    inits = {"w": RNG.standard_normal((4, 4))}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "x"], ["y"], name="residual")]
    with pytest.raises(SerializationError, match="chain"):
        import_onnx(_save(tmp_path, nodes, inits, (4,), (4,)))


def test_truncated_and_garbage_files(tmp_path):
    good = export_onnx(Sequential([L.Dense(3)], input_shape=(4,), seed=0), tmp_path / "g.onnx")
    data = good.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.onnx").write_bytes(b"\x00not an onnx model\xff" * 10)
    for name in ("cut.onnx", "junk.onnx"):
        with pytest.raises(SerializationError, match="not a valid ONNX model"):
            import_onnx(tmp_path / name)
    with pytest.raises(SerializationError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")


def test_unbuilt_model_is_refused(tmp_path):
    from mao_lab.errors import ModelError

    with pytest.raises(ModelError, match="not built"):
        export_onnx(Sequential([L.Dense(3)]), tmp_path / "x.onnx")
