"""Import an ONNX model whose graph is a chain of supported operators as a Sequential.

Nothing from the file is executed: the graph is read as data, each node is mapped to a
mao_lab layer, and the weights are copied from the initializers. Anything that cannot be
represented exactly (an unknown op, dilations, groups, ceil_mode, asymmetric padding that
is not Keras "same") is refused with the node and the attribute named.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import SerializationError
from ._onnx_common import onnx_modules, same_pads

SUPPORTED = ("Gemm", "MatMul", "Add", "Conv", "MaxPool", "AveragePool", "Relu", "Sigmoid",
             "Tanh", "Softmax", "Flatten", "Reshape", "BatchNormalization", "Dropout",
             "Identity")
_ACT = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax"}


class _Ctx:
    """Walk state: the chain's current tensor, its per-sample shape, the layers so far."""

    def __init__(self, consts: dict[str, np.ndarray], names: set[str]):
        self.consts = consts
        self.layers: list = []
        self.weights: list[list[np.ndarray]] = []
        self.names = names

    def name(self, node) -> str | None:
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", node.name or "").strip("_")
        if not base:
            return None
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def add(self, layer, weights=()) -> None:
        self.layers.append(layer)
        self.weights.append([np.asarray(w, np.float32) for w in weights])


def _where(node) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def _attrs(helper, node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _refuse(node, attr: str, value, why: str):
    if isinstance(value, bytes):
        value = value.decode()
    raise SerializationError(f"{_where(node)}: attribute {attr}={value!r} is not supported "
                             f"({why})")


def _padding(node, a: dict, shape, kernel, strides) -> str:
    """'valid' or 'same' for a Conv/Pool node, or a refusal naming the attribute."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return "valid"
    if auto == "SAME_UPPER":
        return "same"
    if auto != "NOTSET":
        _refuse(node, "auto_pad", auto, "use NOTSET, VALID or SAME_UPPER")
    pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
    if not any(pads):
        return "valid"
    if pads == same_pads(tuple(shape[1:]), kernel, strides):
        return "same"
    _refuse(node, "pads", pads, "mao_lab pads only as 'valid' or Keras 'same' = "
            f"{same_pads(tuple(shape[1:]), kernel, strides)} for this input")


def _window_checks(node, a: dict) -> None:
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        _refuse(node, "dilations", list(a["dilations"]), "only 1")
    if int(a.get("ceil_mode", 0)) != 0:
        _refuse(node, "ceil_mode", a["ceil_mode"], "only 0")
    if int(a.get("storage_order", 0)) != 0:
        _refuse(node, "storage_order", a["storage_order"], "only 0")


def _fuse_activation(ctx: _Ctx, nxt, consumers) -> bool:
    """Fold a following Relu/Sigmoid/Tanh into the Dense/Conv2D just added."""
    layer = ctx.layers[-1]
    if nxt is None or nxt.op_type not in _ACT:
        return False
    if nxt.op_type == "Softmax":  # only over the features of a Dense output
        axis = next((a.i for a in nxt.attribute if a.name == "axis"), -1)
        if type(layer).__name__ != "Dense" or axis not in (-1, 1):
            return False
    if getattr(layer, "activation", None) != "linear" or consumers > 1:
        return False
    layer.activation = _ACT[nxt.op_type]
    return True


def _convert(node, ctx: _Ctx, shape, helper, nxt):
    """Map one node to layer(s); returns (new per-sample shape, nodes consumed)."""
    from .. import layers as L

    op, a, name = node.op_type, _attrs(helper, node), ctx.name(node)
    weights = [ctx.consts.get(i) for i in node.input[1:] if i]
    if op in ("Gemm", "MatMul"):
        if len(shape) != 1:
            raise SerializationError(f"{_where(node)}: expects a 2-D (batch, features) input; "
                                     f"the chain carries per-sample shape {shape}")
        for key in ("transA",):
            if int(a.get(key, 0)):
                _refuse(node, key, a[key], "only 0")
        for key in ("alpha", "beta"):
            if float(a.get(key, 1.0)) != 1.0:
                _refuse(node, key, a[key], "only 1.0")
        if weights[0] is None:
            raise SerializationError(f"{_where(node)}: the weight input must be an initializer")
        w = weights[0].T if int(a.get("transB", 0)) else weights[0]
        bias = weights[1] if len(weights) > 1 else None
        used = 1
        if op == "MatMul" and nxt is not None and nxt.op_type == "Add":
            bias = next((ctx.consts[i] for i in nxt.input if i in ctx.consts), None)
            used = 2 if bias is not None else 1
        if w.shape[0] != shape[0]:
            raise SerializationError(f"{_where(node)}: weight shape {w.shape} does not fit "
                                     f"{shape[0]} input features")
        units = w.shape[1]
        layer = L.Dense(units, use_bias=bias is not None, name=name)
        ctx.add(layer, [w] + ([np.reshape(bias, (units,))] if bias is not None else []))
        return (units,), used
    if op == "Conv":
        _window_checks(node, a)
        if int(a.get("group", 1)) != 1:
            _refuse(node, "group", a["group"], "only 1")
        w = weights[0]
        k, s = tuple(w.shape[2:]), tuple(int(v) for v in a.get("strides", [1, 1]))
        if len(shape) != 3 or w.shape[1] != shape[0]:
            raise SerializationError(f"{_where(node)}: kernel {w.shape} does not fit input "
                                     f"{shape}")
        pad = _padding(node, a, shape, k, s)
        layer = L.Conv2D(w.shape[0], k, strides=s, padding=pad,
                         use_bias=len(weights) > 1, name=name)
        ctx.add(layer, [w] + weights[1:2])
        return layer.compute_output_shape(shape), 1
    if op in ("MaxPool", "AveragePool"):
        _window_checks(node, a)
        if len(node.output) > 1 and node.output[1]:
            raise SerializationError(f"{_where(node)}: the Indices output is not supported")
        k = tuple(int(v) for v in a["kernel_shape"])
        s = tuple(int(v) for v in a.get("strides", [1, 1]))
        pad = _padding(node, a, shape, k, s)
        if op == "AveragePool" and pad == "same" and int(a.get("count_include_pad", 0)):
            _refuse(node, "count_include_pad", 1, "padding is never counted in mao_lab")
        cls = L.MaxPool2D if op == "MaxPool" else L.AvgPool2D
        layer = cls(k, strides=s, padding=pad, name=name)
        ctx.add(layer)
        return layer.compute_output_shape(shape), 1
    if op in _ACT:
        if op == "Softmax":
            axis = int(a.get("axis", -1))
            if axis not in (-1, len(shape)):
                _refuse(node, "axis", axis, "softmax only over the last axis")
        ctx.add(L.Activation(_ACT[op], name=name))
        return shape, 1
    if op == "Flatten":
        if int(a.get("axis", 1)) != 1:
            _refuse(node, "axis", a["axis"], "only 1")
        ctx.add(L.Flatten(name=name))
        return (int(np.prod(shape)),), 1
    if op == "Reshape":
        target = ctx.consts.get(node.input[1])
        if target is None:
            raise SerializationError(f"{_where(node)}: the shape input must be a constant")
        target = [int(v) for v in target]
        if target[0] not in (0, -1) or (target[0] == -1 and -1 in target[1:]):
            raise SerializationError(f"{_where(node)}: the first dimension of shape {target} "
                                     "must keep the batch (0 or -1)")
        rest = [shape[i] if v == 0 else v for i, v in enumerate(target[1:])]
        if -1 in rest:
            rest[rest.index(-1)] = int(np.prod(shape)) // int(np.prod([v for v in rest if v > 0]))
        ctx.add(L.Reshape(tuple(rest), name=name))
        return tuple(rest), 1
    if op == "BatchNormalization":
        if int(a.get("training_mode", 0)):
            _refuse(node, "training_mode", a["training_mode"], "only inference form")
        ctx.add(L.BatchNorm(momentum=float(a.get("momentum", 0.9)),
                            epsilon=float(a.get("epsilon", 1e-5)), name=name), weights[:4])
        return shape, 1
    if op == "Dropout":
        ratio = a.get("ratio", None)
        if len(node.input) > 1 and node.input[1]:
            ratio = ctx.consts.get(node.input[1])
        if len(node.input) > 2 and node.input[2] and bool(ctx.consts.get(node.input[2], 1)):
            raise SerializationError(f"{_where(node)}: training_mode=true is not supported")
        ctx.add(L.Dropout(float(0.5 if ratio is None else ratio), name=name))
        return shape, 1
    if op == "Identity":
        return shape, 1
    raise SerializationError(f"unsupported ONNX op {op!r} at {_where(node)}; supported ops: "
                             f"{', '.join(SUPPORTED)}")


def import_onnx(path, *, name: str | None = None, seed: int | None = 0):
    """A trainable Sequential model (weights included) from the ONNX file at ``path``.

    Example:
        >>> model = import_onnx("lenet5.onnx")  # doctest: +SKIP
    """
    onnx, helper, numpy_helper = onnx_modules()
    from ..model import Sequential

    path = Path(path)
    if not path.is_file():
        raise SerializationError(f"import_onnx: no such file: {path}")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - protobuf/checker raise several types
        raise SerializationError(f"import_onnx: {path} is not a valid ONNX model: "
                                 f"{type(exc).__name__}: {exc}") from exc
    g = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        else:
            nodes.append(n)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise SerializationError(f"import_onnx: expected one graph input; found "
                                 f"{[i.name for i in inputs]}")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
        raise SerializationError(f"import_onnx: input {inputs[0].name!r} needs fixed "
                                 f"per-sample dimensions; found {dims}")
    consumers: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    ctx = _Ctx(consts, set())
    shape, current, i = tuple(dims[1:]), inputs[0].name, 0
    while i < len(nodes):
        node = nodes[i]
        if not node.input or node.input[0] != current or consumers.get(current, 0) > 1:
            raise SerializationError(
                f"import_onnx: {_where(node)} does not continue a chain (its input "
                f"{list(node.input)[:1]} is not the single use of {current!r}); only chains "
                "of supported ops import")
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        before = len(ctx.layers)
        shape, used = _convert(node, ctx, shape, helper, nxt)
        current = nodes[i + used - 1].output[0]
        i += used
        if len(ctx.layers) > before and i < len(nodes):
            follow = nodes[i]
            if (type(ctx.layers[-1]).__name__ in ("Dense", "Conv2D")
                    and follow.input and follow.input[0] == current
                    and _fuse_activation(ctx, follow, consumers.get(current, 0))):
                current, i = follow.output[0], i + 1
    if not ctx.layers:
        raise SerializationError("import_onnx: the graph holds no layer mao_lab can import")
    model = Sequential(ctx.layers, input_shape=tuple(dims[1:]),
                       name=name or (g.name if re.match(r"^[\w.\-]+$", g.name or "") else None),
                       seed=seed)
    for layer, w in zip(ctx.layers, ctx.weights):
        if w:
            layer.set_weights(w)
    return model
