"""The Backend protocol: one device, its array type, and the primitives layers call.

The numpy backend (``numpy_backend.py``) is the specification: every method here is
implemented there in plain numpy with the shapes in its docstring; the OpenCL backend
overrides the same names. Conventions shared by every backend:

* Images are NCHW: ``x: (B, C, H, W)``; conv kernels are ``w: (F, C, KH, KW)``.
* Dense kernels are ``w: (N_in, N_out)``; ``y = x @ w + b``.
* ``padding`` is an explicit ``(top, bottom, left, right)`` tuple of ints; ``stride`` is
  ``(sh, sw)``; ``pool`` is ``(ph, pw)``.
* Activations: "linear", "relu", "sigmoid", "tanh", "softmax" (softmax over the last axis).
  Their backward takes the *output* ``y`` of the forward, not its input.
* ``out=`` / ``beta=``: a result written into ``out`` as ``out = result + beta * out``;
  ``beta=1`` is how backward passes *accumulate* into gradients.
* Optimizer updates and ``fill``/``axpy`` work in place on device arrays.
* Nothing blocks unless it must: ``to_host`` and ``synchronize`` wait for the device.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


@dataclass
class DeviceInfo:
    """What a device is, as shown by ``mao_lab.devices()``."""

    key: str  # what get_backend() accepts: "numpy" or "opencl:<p>:<d>"
    backend: str  # "numpy" | "opencl"
    name: str
    vendor: str
    platform: str
    driver_version: str
    device_type: str  # "CPU" | "GPU" | "ACCELERATOR" | ...
    compute_units: int
    global_mem: int  # bytes
    local_mem: int  # bytes
    fp64: bool
    gflops: float | None = None  # calibrated float32 GEMM speed, filled on demand
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly) of this device's facts."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        d.update(self.extra)
        return d


class Backend:
    """Abstract device backend. See the module docstring for the conventions."""

    kind: str = "abstract"
    info: DeviceInfo

    @property
    def key(self) -> str:
        return self.info.key

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.key}: {self.info.name}>"

    def compute_scope(self):
        """Context for a run of many ops (a fit, an evaluation): where a backend manages
        its threads per run (numpy: BLAS at one thread, ops split over the cores by the
        backend), it does so here. Nests; a no-op by default."""
        return contextlib.nullcontext()

    # The methods below are documented and implemented in NumpyBackend, the reference.
    _PRIMITIVES = (
        "asarray", "to_host", "empty", "zeros", "copy", "reshape", "synchronize", "fill",
        "gemm", "activation_forward", "activation_backward",
        "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
        "mse_forward", "mse_backward", "reduce_sum", "argmax",
        "add", "mul", "scale", "axpy",
        "conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter",
        "conv2d_maxpool_forward", "conv2d_maxpool_backward",
        "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
        "dropout_mask", "batchnorm_forward", "batchnorm_backward",
        "sgd_update", "adam_update",
    )  # fmt: skip


def conv_output_size(size: int, k: int, stride: int, pad0: int, pad1: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + pad0 + pad1 - k) // stride + 1


def dropout_uniform(seed: int, offset: int, n: int) -> np.ndarray:
    """Counter-based uniform floats in [0, 1) for elements ``offset .. offset+n-1``.

    The same integer hash runs in ``kernels/elementwise.cl``: murmur3's 32-bit finalizer
    of ``(index * 0x9E3779B9 + seed) mod 2**32`` (index = offset + i), top 24 bits / 2**24.
    Every backend therefore draws bit-identical masks for a given (seed, offset).
    """
    idx = (np.arange(n, dtype=np.uint64) + np.uint64(offset)) & np.uint64(0xFFFFFFFF)
    h = (idx * np.uint64(0x9E3779B9) + np.uint64(seed & 0xFFFFFFFF)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    return ((h >> np.uint64(8)).astype(np.float64) * (1.0 / (1 << 24))).astype(np.float32)
