"""Conformance: every primitive (except gemm, see test_gemm.py) on every available backend
against the numpy backend run in float64, table-driven, on shapes that are not multiples of
work-group or tile sizes; then bad input and the errors it must raise."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from mao_lab.backends.numpy_backend import NumpyBackend
from mao_lab.errors import ConfigError, DTypeError, ShapeError

REF = NumpyBackend()  # its own instance: float64 inputs, no shared caches


def f32(rng, *shape) -> np.ndarray:
    """Normal data exactly representable in float32 (so argmax/max ties match the reference)."""
    return rng.standard_normal(shape).astype(np.float32).astype(np.float64)


@dataclass
class Case:
    """One primitive call: ``make`` draws float64/int inputs, ``run`` calls the backend and
    returns the arrays to compare (outputs and arrays updated in place)."""

    id: str
    make: Callable[[np.random.Generator], dict]
    run: Callable
    rtol: float
    atol: float
    algo: str | None = None  # OpenCL conv algorithm to force


CASES: list[Case] = []


def case(id, make, run, rtol=1e-6, atol=1e-6, algos=(None,)):
    for algo in algos:
        CASES.append(Case(id if algo is None else f"{id}[{algo}]", make, run, rtol, atol, algo))


# ---- elementwise --------------------------------------------------------------------------------
for shape in [(1,), (7,), (257,), (7, 33)]:
    s = "x".join(map(str, shape))
    case(f"add-{s}", lambda r, sh=shape: {"a": f32(r, *sh), "b": f32(r, *sh)},
         lambda be, d: be.add(d["a"], d["b"]))
    case(f"mul-{s}", lambda r, sh=shape: {"a": f32(r, *sh), "b": f32(r, *sh)},
         lambda be, d: be.mul(d["a"], d["b"]))
    case(f"scale-{s}", lambda r, sh=shape: {"a": f32(r, *sh)},
         lambda be, d: be.scale(d["a"], -0.3))
    case(f"axpy-{s}", lambda r, sh=shape: {"x": f32(r, *sh), "y": f32(r, *sh)},
         lambda be, d: (be.axpy(0.7, d["x"], d["y"]), d["y"])[1])
case("add-broadcast-bias", lambda r: {"a": f32(r, 7, 33), "b": f32(r, 33)},
     lambda be, d: be.add(d["a"], d["b"]))
case("mul-inplace-out", lambda r: {"a": f32(r, 3, 5, 7), "b": f32(r, 3, 5, 7)},
     lambda be, d: be.mul(d["a"], d["b"], out=d["a"]))
case("scale-inplace-out", lambda r: {"a": f32(r, 33)},
     lambda be, d: (be.scale(d["a"], 2.5, out=d["a"]), d["a"])[1])

# ---- activations (backward takes the forward *output*) ------------------------------------------
for kind in ("linear", "relu", "sigmoid", "tanh", "softmax"):
    for shape in [(1, 1), (7, 33), (3, 5, 257)]:
        s = "x".join(map(str, shape))
        # transcendental functions under -cl-fast-relaxed-math: ~4 ulp
        tol = 1e-6 if kind in ("linear", "relu") else 5e-6
        case(f"activation_forward-{kind}-{s}", lambda r, sh=shape: {"x": 4 * f32(r, *sh)},
             lambda be, d, k=kind: be.activation_forward(d["x"], k), tol, tol)
        case(f"activation_backward-{kind}-{s}",
             lambda r, sh=shape, k=kind: {
                 "dy": f32(r, *sh),
                 "y": REF.activation_forward(f32(r, *sh), k).astype(np.float32).astype(float)},
             lambda be, d, k=kind: be.activation_backward(d["dy"], d["y"], k), tol, tol)
case("activation_forward-out", lambda r: {"x": f32(r, 7, 9), "o": f32(r, 7, 9)},
     lambda be, d: (be.activation_forward(d["x"], "tanh", out=d["o"]), d["o"])[1], 5e-6, 5e-6)

# ---- losses -------------------------------------------------------------------------------------
for b, k in [(1, 1), (7, 3), (33, 10), (5, 257)]:
    def _labels(r, b=b, k=k, dtype=np.int64):
        return {"z": 3 * f32(r, b, k), "t": r.integers(0, k, b).astype(dtype)}

    def _probs(r, b=b, k=k):
        return {"z": 3 * f32(r, b, k), "t": REF.activation_forward(f32(r, b, k), "softmax")}

    for name, make in [("int64", _labels), ("int32", lambda r, f=_labels: f(r, dtype=np.int32)),
                       ("probs", _probs)]:
        case(f"softmax_cross_entropy_forward-{name}-{b}x{k}", make,
             lambda be, d: be.softmax_cross_entropy_forward(d["z"], d["t"]), 1e-5, 1e-6)
        case(f"softmax_cross_entropy_backward-{name}-{b}x{k}",
             lambda r, m=make, b=b, k=k: dict(
                 m(r), p=REF.activation_forward(f32(r, b, k), "softmax")),
             lambda be, d: be.softmax_cross_entropy_backward(d["p"], d["t"], scale=0.25))
for shape in [(1, 1), (7, 3, 5), (33, 257)]:
    s = "x".join(map(str, shape))

    def mk(r, sh=shape):
        return {"y": f32(r, *sh), "t": f32(r, *sh)}

    case(f"mse_forward-{s}", mk, lambda be, d: be.mse_forward(d["y"], d["t"]), 1e-5, 1e-5)
    case(f"mse_backward-{s}", mk, lambda be, d: be.mse_backward(d["y"], d["t"], scale=0.5))

# ---- reductions ---------------------------------------------------------------------------------
for shape, axis in [((7, 33), 0), ((64, 300), 0), ((7, 33), 1), ((5, 6, 7, 9), (0, 2, 3)),
                    ((64, 16, 8, 8), (0, 2, 3)), ((5, 6, 7, 9), 1), ((4, 5, 6), (0, 2)),
                    ((4, 5, 6), -1), ((3, 20000), 1), ((257,), 0), ((2, 1, 3), (1,))]:
    s = "x".join(map(str, shape))
    n = int(np.prod(shape)) // int(np.prod([d for i, d in enumerate(shape) if i not in
                                             np.atleast_1d(axis) % len(shape)]))
    tol = 2e-6 * n  # float32 sequential sums: error grows ~linearly in the worst case
    case(f"reduce_sum-{s}-axis{axis}", lambda r, sh=shape: {"x": f32(r, *sh)},
         lambda be, d, a=axis: be.reduce_sum(d["x"], a), 1e-5, tol)
case("reduce_sum-beta-accumulate", lambda r: {"x": f32(r, 33, 7), "o": f32(r, 7)},
     lambda be, d: be.reduce_sum(d["x"], 0, out=d["o"], beta=0.5), 1e-6, 1e-5)
case("reduce_sum-conv-bias-beta1", lambda r: {"x": f32(r, 9, 6, 7, 7), "o": f32(r, 6)},
     lambda be, d: be.reduce_sum(d["x"], (0, 2, 3), out=d["o"], beta=1.0), 1e-6, 1e-4)
for shape in [(1, 1), (7, 33), (5, 3, 257)]:
    case(f"argmax-{'x'.join(map(str, shape))}", lambda r, sh=shape: {"x": f32(r, *sh)},
         lambda be, d: be.argmax(d["x"]), 0, 0)

# ---- convolution: (x shape, w shape, stride, padding) -------------------------------------------
CONV = [
    ((3, 1, 28, 28), (6, 1, 5, 5), (1, 1), (0, 0, 0, 0)),  # LeNet conv1
    ((3, 6, 12, 12), (16, 6, 5, 5), (1, 1), (0, 0, 0, 0)),  # LeNet conv2
    ((2, 6, 14, 14), (16, 6, 5, 5), (1, 1), (2, 1, 2, 1)),  # asymmetric "same"-like padding
    ((2, 3, 9, 11), (5, 3, 3, 3), (2, 2), (1, 1, 1, 1)),  # stride 2, "same"-like padding
    ((1, 2, 7, 33), (7, 2, 3, 2), (2, 3), (0, 2, 1, 0)),  # asymmetric stride and padding
    ((2, 3, 7, 10), (4, 3, 5, 3), (1, 1), (3, 0, 1, 2)),  # 5-row kernel, top-only padding
    ((2, 33, 5, 6), (9, 33, 1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1, many channels
    ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0, 0, 0)),  # the smallest
]
ALGOS = ("direct", "im2col")
for xs, ws, st, pad in CONV:
    s = (f"x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{st[0]}{st[1]}"
         f"-p{''.join(map(str, pad))}")
    ckk = ws[1] * ws[2] * ws[3]
    tol = 2e-6 * ckk + 1e-6

    def _conv(r, xs=xs, ws=ws):
        return {"x": f32(r, *xs), "w": f32(r, *ws), "b": f32(r, ws[0])}

    # every epilogue on LeNet conv2, relu elsewhere (each epilogue x geometry is a build)
    lenet2 = ws == (16, 6, 5, 5) and not any(pad)
    for act in ("relu", "linear", "tanh", "sigmoid") if lenet2 else ("relu",):
        case(f"conv2d_forward-{act}-{s}", _conv,
             lambda be, d, st=st, pad=pad, a=act: be.conv2d_forward(
                 d["x"], d["w"], d["b"], stride=st, padding=pad, activation=a),
             1e-5, tol, ALGOS)
    if ws == (6, 1, 5, 5):
        case(f"conv2d_forward-nobias-softmax-{s}", _conv,
             lambda be, d, st=st, pad=pad: be.conv2d_forward(
                 d["x"], d["w"], stride=st, padding=pad, activation="softmax"),
             1e-5, tol, ALGOS)
    oh = (xs[2] + pad[0] + pad[1] - ws[2]) // st[0] + 1
    ow = (xs[3] + pad[2] + pad[3] - ws[3]) // st[1] + 1
    dys = (xs[0], ws[0], oh, ow)
    case(f"conv2d_backward_data-{s}", lambda r, ws=ws, dys=dys: {"dy": f32(r, *dys),
                                                                 "w": f32(r, *ws)},
         lambda be, d, xs=xs, st=st, pad=pad: be.conv2d_backward_data(
             d["dy"], d["w"], xs, stride=st, padding=pad),
         1e-5, 2e-6 * ws[0] * ws[2] * ws[3] + 1e-6, ALGOS)
    ftol = 2e-6 * xs[0] * oh * ow + 1e-6
    case(f"conv2d_backward_filter-{s}", lambda r, xs=xs, dys=dys: {"dy": f32(r, *dys),
                                                                   "x": f32(r, *xs)},
         lambda be, d, ws=ws, st=st, pad=pad: be.conv2d_backward_filter(
             d["dy"], d["x"], ws, stride=st, padding=pad), 1e-5, ftol, ALGOS)
    case(f"conv2d_backward_filter-beta-{s}",
         lambda r, xs=xs, ws=ws, dys=dys: {"dy": f32(r, *dys), "x": f32(r, *xs),
                                           "o": f32(r, *ws)},
         lambda be, d, ws=ws, st=st, pad=pad: be.conv2d_backward_filter(
             d["dy"], d["x"], ws, stride=st, padding=pad, out=d["o"], beta=1.0),
         1e-5, ftol, ALGOS)

# ---- pooling: (x shape, pool, stride, padding); overlapping and not -----------------------------
POOL = [
    ((3, 6, 24, 24), (2, 2), None, (0, 0, 0, 0)),  # LeNet, non-overlapping
    ((2, 3, 7, 9), (2, 2), None, (0, 0, 0, 0)),  # odd size: the last row/column dropped
    ((2, 3, 9, 11), (3, 3), (2, 2), (1, 1, 1, 1)),  # overlapping, padded
    ((1, 2, 8, 33), (2, 3), (1, 2), (0, 1, 2, 0)),  # overlapping, asymmetric
]
for xs, pool, st, pad in POOL:
    s = f"x{'x'.join(map(str, xs))}-k{pool[0]}{pool[1]}-s{st}-p{''.join(map(str, pad))}"
    case(f"maxpool2d_forward-{s}", lambda r, xs=xs: {"x": f32(r, *xs)},
         lambda be, d, p=pool, st=st, pad=pad: be.maxpool2d_forward(
             d["x"], p, stride=st, padding=pad), 0, 0)

    def _mpb(r, xs=xs, p=pool, st=st, pad=pad):
        _, idx = REF.maxpool2d_forward(f32(r, *xs), p, stride=st, padding=pad)
        return {"dy": f32(r, *idx.shape), "idx": idx}

    case(f"maxpool2d_backward-{s}", _mpb,
         lambda be, d, xs=xs: be.maxpool2d_backward(d["dy"], d["idx"], xs), 1e-6, 1e-6)
    case(f"avgpool2d_forward-{s}", lambda r, xs=xs: {"x": f32(r, *xs)},
         lambda be, d, p=pool, st=st, pad=pad: be.avgpool2d_forward(
             d["x"], p, stride=st, padding=pad), 1e-6, 1e-6)

    def _apb(r, xs=xs, p=pool, st=st, pad=pad):
        return {"dy": f32(r, *REF.avgpool2d_forward(np.zeros(xs), p, stride=st,
                                                     padding=pad).shape)}

    case(f"avgpool2d_backward-{s}", _apb,
         lambda be, d, xs=xs, p=pool, st=st, pad=pad: be.avgpool2d_backward(
             d["dy"], xs, p, stride=st, padding=pad), 1e-6, 1e-6)

# ---- batch norm ---------------------------------------------------------------------------------
for xs in [(7, 33), (64, 300), (5, 6, 7, 9), (2, 3, 1, 1)]:
    s = "x".join(map(str, xs))

    def _bn(r, xs=xs):
        c = xs[1]
        return {"x": 2 + 3 * f32(r, *xs), "g": f32(r, c), "b": f32(r, c), "rm": f32(r, c),
                "rv": 1 + np.abs(f32(r, c))}

    case(f"batchnorm_forward-train-{s}", _bn,
         lambda be, d: be.batchnorm_forward(d["x"], d["g"], d["b"], d["rm"], d["rv"],
                                            momentum=0.9, eps=1e-3) + (d["rm"], d["rv"]),
         1e-5, 2e-5)
    case(f"batchnorm_forward-infer-{s}", _bn,
         lambda be, d: be.batchnorm_forward(d["x"], d["g"], d["b"], d["rm"], d["rv"],
                                            training=False)[0], 1e-5, 1e-5)

    def _bnb(r, xs=xs):
        c = xs[1]
        _, xhat, inv = REF.batchnorm_forward(f32(r, *xs), np.ones(c), np.zeros(c), np.zeros(c),
                                             np.ones(c))
        return {"dy": f32(r, *xs), "xhat": xhat.astype(np.float32).astype(float),
                "inv": inv.astype(np.float32).astype(float), "g": f32(r, c), "dg": f32(r, c),
                "db": f32(r, c)}

    m = int(np.prod(xs)) // xs[1]
    case(f"batchnorm_backward-{s}", _bnb,
         lambda be, d: (be.batchnorm_backward(d["dy"], d["xhat"], d["inv"], d["g"], d["dg"],
                                              d["db"]), d["dg"], d["db"]), 1e-5, 2e-6 * m)

# ---- optimizers ---------------------------------------------------------------------------------
for n in (1, 7, 257):
    def _opt(r, n=n):
        return {"p": f32(r, n), "g": f32(r, n), "v": f32(r, n), "m": f32(r, n),
                "s": np.abs(f32(r, n))}

    for kw in ({}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
               {"momentum": 0.5, "weight_decay": 0.01}, {"weight_decay": 0.1}):
        name = "-".join(f"{k}{v}" for k, v in kw.items()) or "plain"
        case(f"sgd_update-{name}-{n}", _opt,
             lambda be, d, kw=kw: (be.sgd_update(d["p"], d["g"], d["v"], lr=0.1, **kw),
                                   d["p"], d["v"])[1:])
    for step in (1, 7):
        case(f"adam_update-step{step}-{n}", _opt,
             lambda be, d, st=step: (be.adam_update(d["p"], d["g"], d["m"], d["s"], lr=0.01,
                                                    step=st), d["p"], d["m"], d["s"])[1:],
             1e-5, 1e-6)


# ---- the runner ---------------------------------------------------------------------------------
def _upload(be, d: dict, dtype) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            out[k] = be.asarray(v, dtype=dtype if v.dtype.kind == "f" else v.dtype)
        else:
            out[k] = v
    return out


def _host(be, res) -> list[np.ndarray]:
    res = res if isinstance(res, tuple | list) else (res,)
    return [None if a is None else np.asarray(be.to_host(a)) for a in res]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_primitive_matches_float64_reference(backend, c: Case):
    # numpy has one conv algorithm: its "im2col" rows simply run the same reference path
    d = c.make(np.random.default_rng(zlib.crc32(c.id.encode())))
    want = _host(REF, c.run(REF, _upload(REF, d, np.float64)))
    saved = getattr(backend, "conv_algorithm", None)
    try:
        if c.algo is not None and saved is not None:
            backend.conv_algorithm = c.algo
        got = _host(backend, c.run(backend, _upload(backend, d, np.float32)))
    finally:
        if saved is not None:
            backend.conv_algorithm = saved
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None
            continue
        assert g.shape == w.shape, f"{c.id} output {i}: shape {g.shape} != {w.shape}"
        if w.dtype.kind in "iu":
            assert g.dtype == w.dtype, f"{c.id} output {i}: dtype {g.dtype} != {w.dtype}"
        else:
            assert g.dtype == np.float32, f"{c.id} output {i}: dtype {g.dtype}"
        np.testing.assert_allclose(g.astype(np.float64), w, rtol=c.rtol, atol=c.atol,
                                   err_msg=f"{c.id} output {i} on {backend.key}")


@pytest.mark.parametrize("shape,rate,seed,offset", [
    ((1,), 0.5, 0, 0), ((7, 33), 0.1, 1234, 0), ((3, 5, 257), 1 / 3, 2**32 + 7, 99),
    ((257,), 0.0, 5, 2**32 - 100), ((64, 300), 0.9, 42, 64 * 300 * 3)])
def test_dropout_mask_bit_identical(backend, shape, rate, seed, offset):
    want = REF.dropout_mask(shape, rate, seed, offset)
    got = backend.to_host(backend.dropout_mask(shape, rate, seed, offset))
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, want)
    if rate:
        assert abs((want == 0).mean() - rate) < 0.1 + 3 / np.sqrt(want.size)


# ---- bad input: the same exception types and messages on every backend --------------------------
def _a(be, *shape, dtype=np.float32):
    return be.asarray(np.ones(shape), dtype=dtype)


BAD = [
    ("activation_backward-shapes", lambda be: be.activation_backward(
        _a(be, 3, 4), _a(be, 4, 3), "relu"), ShapeError, "differ"),
    ("activation-unknown", lambda be: be.activation_forward(_a(be, 3), "gelu"), ConfigError,
     "unknown activation 'gelu'"),
    ("axpy-shapes", lambda be: be.axpy(1.0, _a(be, 3), _a(be, 4)), ShapeError, "differ"),
    ("mse-shapes", lambda be: be.mse_forward(_a(be, 3, 4), _a(be, 3, 5)), ShapeError,
     "'target' must have shape (3, 4); received (3, 5)"),
    ("sce-label-count", lambda be: be.softmax_cross_entropy_forward(
        _a(be, 4, 3), be.asarray(np.zeros(5, np.int64))), ShapeError, "5 labels for a batch of 4"),
    ("sce-float-ids", lambda be: be.softmax_cross_entropy_forward(
        _a(be, 4, 3), _a(be, 4)), ShapeError, "integer class ids"),
    ("sce-target-shape", lambda be: be.softmax_cross_entropy_backward(
        _a(be, 4, 3), _a(be, 4, 2)), ShapeError, "'labels' must have shape (4, 3)"),
    ("conv-channels", lambda be: be.conv2d_forward(_a(be, 2, 3, 8, 8), _a(be, 4, 2, 3, 3)),
     ShapeError, "x has 3 channels but w expects 2"),
    ("conv-window", lambda be: be.conv2d_forward(_a(be, 1, 1, 4, 4), _a(be, 1, 1, 5, 5)),
     ShapeError, "does not fit the padded input"),
    ("conv-dtype-mix", lambda be: be.conv2d_forward(
        _a(be, 1, 1, 4, 4), _a(be, 1, 1, 3, 3, dtype=np.float64)), DTypeError,
     "share one float dtype"),
    ("conv-dy-shape", lambda be: be.conv2d_backward_data(
        _a(be, 1, 4, 3, 3), _a(be, 4, 1, 3, 3), (1, 1, 6, 6)), ShapeError,
     "'dy' must have shape (1, 4, 4, 4)"),
    ("conv-filter-dy-shape", lambda be: be.conv2d_backward_filter(
        _a(be, 1, 4, 3, 3), _a(be, 1, 1, 6, 6), (4, 1, 3, 3)), ShapeError, "'dy' must have"),
    ("pool-window", lambda be: be.maxpool2d_forward(_a(be, 1, 1, 2, 2), (3, 3)), ShapeError,
     "does not fit"),
    ("pool-stride", lambda be: be.avgpool2d_forward(_a(be, 1, 1, 4, 4), (2, 2), stride=(0, 1)),
     ConfigError, "stride must be two ints >= 1"),
    ("maxpool-idx", lambda be: be.maxpool2d_backward(
        _a(be, 1, 1, 2, 2), be.asarray(np.zeros((1, 1, 3, 3), np.int32)), (1, 1, 4, 4)),
     ShapeError, "differ"),
    ("avgpool-dy", lambda be: be.avgpool2d_backward(_a(be, 1, 1, 3, 3), (1, 1, 4, 4), (2, 2)),
     ShapeError, "'dy' must have shape (1, 1, 2, 2)"),
    ("batchnorm-channels", lambda be: be.batchnorm_forward(
        _a(be, 4, 3), _a(be, 2), _a(be, 2), _a(be, 2), _a(be, 2)), ShapeError,
     "x has 3 channels, gamma 2"),
    ("dropout-rate", lambda be: be.dropout_mask((3,), 1.0, 0), ConfigError, "rate must be in"),
    ("sgd-velocity", lambda be: be.sgd_update(_a(be, 3), _a(be, 3), lr=0.1, momentum=0.9),
     ConfigError, "needs a velocity array"),
]


@pytest.mark.parametrize("name,call,exc,text", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_clear_error(backend, name, call, exc, text):
    with pytest.raises(exc) as info:
        call(backend)
    assert text in str(info.value)


OPENCL_DTYPE = [
    ("add", lambda be: be.add(_a(be, 3, dtype=np.float64), _a(be, 3))),
    ("activation_forward", lambda be: be.activation_forward(_a(be, 3, dtype=np.float64), "relu")),
    ("reduce_sum", lambda be: be.reduce_sum(_a(be, 3, 3, dtype=np.float64), 0)),
    ("conv2d_forward", lambda be: be.conv2d_forward(
        _a(be, 1, 1, 4, 4, dtype=np.float64), _a(be, 1, 1, 3, 3, dtype=np.float64))),
    ("maxpool2d_forward", lambda be: be.maxpool2d_forward(
        _a(be, 1, 1, 4, 4, dtype=np.float64), (2, 2))),
    ("sgd_update", lambda be: be.sgd_update(_a(be, 3, dtype=np.float64),
                                            _a(be, 3, dtype=np.float64), lr=0.1)),
    ("softmax_cross_entropy_forward", lambda be: be.softmax_cross_entropy_forward(
        _a(be, 2, 3, dtype=np.int32), be.asarray(np.zeros(2, np.int32)))),
]


@pytest.mark.parametrize("name,call", OPENCL_DTYPE, ids=[b[0] for b in OPENCL_DTYPE])
def test_opencl_rejects_other_dtypes(opencl_backend, name, call):
    with pytest.raises(DTypeError, match=rf"{name}.*float32.*(float64|int32)"):
        call(opencl_backend)


def test_opencl_rejects_host_arrays(opencl_backend):
    with pytest.raises(DTypeError, match="'x' must be a device array"):
        opencl_backend.activation_forward(np.ones(3, np.float32), "relu")


def test_opencl_conv_algorithm_is_validated(opencl_backend):
    x = opencl_backend.asarray(np.ones((1, 1, 4, 4), np.float32))
    w = opencl_backend.asarray(np.ones((1, 1, 3, 3), np.float32))
    opencl_backend.conv_algorithm = "fft"
    try:
        with pytest.raises(ConfigError, match="conv_algorithm must be one of auto, direct"):
            opencl_backend.conv2d_forward(x, w)
    finally:
        opencl_backend.conv_algorithm = "auto"
    np.testing.assert_array_equal(opencl_backend.to_host(opencl_backend.conv2d_forward(x, w)),
                                  np.full((1, 1, 2, 2), 9.0, np.float32))


@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
                                {"momentum": 0.5, "weight_decay": 0.01}])
def test_opencl_sgd_update_many_matches_sgd_in_float64(opencl_backend, kw):
    """Eleven tensors (two launches of up to 8, chunk edges, one empty), two steps, against
    the float64 update of each."""
    be, r = opencl_backend, np.random.default_rng(11)
    sizes = (1, 7, 1023, 1024, 1025, 0, 3000, 64, 5, 2049, 150)
    p, g, v = ([f32(r, n).astype(np.float32) for n in sizes] for _ in range(3))
    dp, dg, dv = ([be.asarray(a) for a in arrs] for arrs in (p, g, v))
    m, wd = kw.get("momentum", 0.0), kw.get("weight_decay", 0.0)
    p64, v64 = [a.astype(np.float64) for a in p], [a.astype(np.float64) for a in v]
    for _ in range(2):  # the second step reuses the first one's checked launch plan
        be.sgd_update_many(dp, dg, dv if m else None, lr=0.1, **kw)
        for k in range(len(sizes)):
            gk = g[k] + wd * p64[k]
            if m:
                v64[k] = m * v64[k] + gk
                step = gk + m * v64[k] if kw.get("nesterov") else v64[k]
            else:
                step = gk
            p64[k] = p64[k] - 0.1 * step
    for k, n in enumerate(sizes):
        np.testing.assert_allclose(be.to_host(dp[k]), p64[k], rtol=1e-6, atol=1e-6,
                                   err_msg=f"param {k} ({n} elements)")
        if m:
            np.testing.assert_allclose(be.to_host(dv[k]), v64[k], rtol=1e-6, atol=1e-6,
                                       err_msg=f"velocity {k} ({n} elements)")


def test_opencl_sgd_update_many_refuses_mismatched_lists(opencl_backend):
    be = opencl_backend
    a = be.asarray(np.ones(3, np.float32))
    with pytest.raises(ShapeError, match="one entry per tensor"):
        be.sgd_update_many([a, a], [a], lr=0.1)
    with pytest.raises(ConfigError, match="needs a velocity array"):
        be.sgd_update_many([a], [a], lr=0.1, momentum=0.9)
