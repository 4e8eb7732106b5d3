"""Export a built Sequential model to ONNX (dynamic batch size, NCHW, float32).

Every core layer maps to standard operators: Dense -> Gemm, Conv2D -> Conv, pooling ->
MaxPool/AveragePool, Flatten/Reshape, Dropout (identity at inference), BatchNorm ->
BatchNormalization (inference form), activations -> Relu/Sigmoid/Tanh/Softmax.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ModelError, SerializationError
from ._onnx_common import onnx_modules

ACT_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}
DEFAULT_OPSET = 17


class _Builder:
    """Accumulates nodes and initializers while walking the layers."""

    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits = [], []
        self.current = "input"
        self._n = 0

    def const(self, name: str, value) -> str:
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self._n += 1
        out = f"{name}_out" if op != "Identity" else f"{name}_id{self._n}"
        self.nodes.append(self.h.make_node(op, inputs, [out], name=name, **attrs))
        self.current = out
        return out

    def activation(self, kind: str, layer_name: str) -> None:
        if kind in ACT_OPS:
            attrs = {"axis": -1} if kind == "softmax" else {}
            self.node(ACT_OPS[kind], [self.current], f"{layer_name}/{kind}", **attrs)


def _pads(pad) -> list[int]:
    """mao_lab (top, bottom, left, right) -> ONNX [top, left, bottom, right]."""
    t, b, l, r = (int(p) for p in pad)
    return [t, l, b, r]


def _export_layer(bld: _Builder, layer, in_shape) -> None:
    kind = type(layer).__name__
    name = layer.name
    w = dict(zip(layer.weight_names(), layer.get_weights()))
    if kind == "Dense":
        if len(in_shape) != 1:
            raise SerializationError(f"{name}: Dense on a {len(in_shape)}-D input cannot be "
                                     "exported (add a Flatten before it)")
        inputs = [bld.current, bld.const(f"{name}/kernel", w["kernel"])]
        if layer.use_bias:
            inputs.append(bld.const(f"{name}/bias", w["bias"]))
        bld.node("Gemm", inputs, name)
        bld.activation(layer.activation, name)
    elif kind == "Conv2D":
        inputs = [bld.current, bld.const(f"{name}/kernel", w["kernel"])]
        if layer.use_bias:
            inputs.append(bld.const(f"{name}/bias", w["bias"]))
        bld.node("Conv", inputs, name, kernel_shape=list(layer.kernel_size),
                 strides=list(layer.strides), pads=_pads(layer._pad),
                 dilations=[1, 1], group=1)
        bld.activation(layer.activation, name)
    elif kind in ("MaxPool2D", "AvgPool2D"):
        attrs = dict(kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                     pads=_pads(layer._pad))
        if kind == "MaxPool2D":
            bld.node("MaxPool", [bld.current], name, **attrs)
        else:
            bld.node("AveragePool", [bld.current], name, count_include_pad=0, **attrs)
    elif kind == "Flatten":
        bld.node("Flatten", [bld.current], name, axis=1)
    elif kind == "Reshape":
        shape = bld.const(f"{name}/shape", np.array([0, *layer.target_shape], np.int64))
        bld.node("Reshape", [bld.current, shape], name)
    elif kind == "Dropout":
        ratio = bld.const(f"{name}/ratio", np.array(layer.rate, np.float32))
        bld.node("Dropout", [bld.current, ratio], name)
    elif kind == "Activation":
        if layer.activation == "linear":
            bld.node("Identity", [bld.current], name)
        else:
            bld.activation(layer.activation, name)
    elif kind == "BatchNorm":
        ins = [bld.current] + [bld.const(f"{name}/{k}", w[k]) for k in
                               ("gamma", "beta", "moving_mean", "moving_variance")]
        bld.node("BatchNormalization", ins, name, epsilon=float(layer.epsilon),
                 momentum=float(layer.momentum))
    else:
        raise SerializationError(
            f"layer {name!r} of type {kind} has no ONNX mapping; supported: Dense, Conv2D, "
            "MaxPool2D, AvgPool2D, Flatten, Reshape, Dropout, Activation, BatchNorm")


def to_onnx(model, opset: int = DEFAULT_OPSET):
    """The ``onnx.ModelProto`` of a built Sequential model."""
    onnx, helper, numpy_helper = onnx_modules()
    if not getattr(model, "built", False) or model.input_shape is None:
        raise ModelError("export_onnx: the model is not built; call model.build(input_shape) "
                         "or fit it first")
    if not 11 <= int(opset) <= onnx.defs.onnx_opset_version():
        raise SerializationError(f"export_onnx: opset must be between 11 and "
                                 f"{onnx.defs.onnx_opset_version()}; received {opset}")
    bld = _Builder(helper, numpy_helper)
    shape = tuple(model.input_shape)
    for layer in model.layers:
        _export_layer(bld, layer, shape)
        shape = tuple(layer.output_shape)
    out_name = "output"
    # node names are layer names; this one's name cannot collide with a layer's ("/" is
    # not allowed in layer names)
    bld.nodes.append(helper.make_node("Identity", [bld.current], [out_name],
                                      name="mao_lab/output"))
    f32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        bld.nodes, model.name or "mao_lab_model",
        [helper.make_tensor_value_info("input", f32, ["batch", *model.input_shape])],
        [helper.make_tensor_value_info(out_name, f32, ["batch", *shape])],
        initializer=bld.inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="mao_lab", producer_version=__version__)
    proto.ir_version = min(proto.ir_version, 8)  # readable by older runtimes too
    helper.set_model_props(proto, {"mao_lab_version": __version__, "input_names": "input",
                                   "mao_lab_model_name": model.name or ""})
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` as an ONNX file at ``path``; returns the path.

    Example:
        >>> from mao_lab import Sequential
        >>> from mao_lab.layers import Dense
        >>> m = Sequential([Dense(3, activation="softmax")], input_shape=(4,), seed=0)
        >>> export_onnx(m, "/tmp/m.onnx").suffix
        '.onnx'
    """
    onnx, _, _ = onnx_modules()
    path = Path(path)
    proto = to_onnx(model, opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    return path
