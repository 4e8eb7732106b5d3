"""The OpenCL backend: the numpy backend's primitives as kernels from kernels/*.cl.

Importing this subpackage imports pyopencl; ``mao_lab`` itself never does until an OpenCL
device is asked for.
"""

from __future__ import annotations

from .backend import OpenCLBackend
from .gemm import PackedB
from .tuner import GemmConfig, tune_gemm

__all__ = ["GemmConfig", "OpenCLBackend", "PackedB", "tune_gemm"]
