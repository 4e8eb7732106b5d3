"""The device inventory: numpy's CPU plus every OpenCL device of every platform.

OpenCL devices get stable keys ``opencl:<p>:<d>`` where platforms are sorted by
(name, vendor, version) and devices within a platform by (type, name, index): the same
machine always yields the same keys, whatever order the ICD loader reports.
"""

from __future__ import annotations

import logging
import os
import platform as _platform
import time
from functools import lru_cache

import numpy as np

from .base import DeviceInfo

log = logging.getLogger(__name__)


def _cpuinfo(field: str) -> str:
    """A field of /proc/cpuinfo (Linux), or ''."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_name() -> str:
    return _cpuinfo("model name") or _platform.processor() or _platform.machine() or "CPU"


def _blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        return str(cfg["Build Dependencies"]["blas"]["name"])
    except Exception:  # noqa: BLE001 - informational only
        return "unknown BLAS"


@lru_cache(maxsize=1)
def numpy_device_info() -> DeviceInfo:
    """DeviceInfo of the host CPU as seen by numpy."""
    try:
        import psutil

        mem = int(psutil.virtual_memory().total)
    except ImportError:
        mem = 0
    return DeviceInfo(
        key="numpy", backend="numpy", name=_cpu_name(),
        vendor=_cpuinfo("vendor_id") or _platform.machine(),
        platform=f"numpy {np.__version__} ({_blas_name()})", driver_version=np.__version__,
        device_type="CPU", compute_units=os.cpu_count() or 1, global_mem=mem,
        local_mem=0, fp64=True,
    )


def _sorted_platforms(cl):
    plats = cl.get_platforms()
    return sorted(plats, key=lambda p: (p.name, p.vendor, p.version))


def _sorted_devices(cl, plat):
    devs = list(enumerate(plat.get_devices()))
    return [d for _, d in sorted(devs, key=lambda t: (t[1].type, t[1].name, t[0]))]


def _device_type(cl, bits: int) -> str:
    for flag in ("GPU", "ACCELERATOR", "CPU", "CUSTOM"):
        if bits & getattr(cl.device_type, flag, 0):
            return flag
    return "OTHER"


@lru_cache(maxsize=1)
def opencl_devices() -> tuple:
    """Every OpenCL device as (DeviceInfo, pyopencl.Device) pairs; () without drivers."""
    os.environ.setdefault("POCL_AFFINITY", "1")  # read by PoCL when its platform starts
    try:
        import pyopencl as cl
    except ImportError:
        log.info("pyopencl is not installed: no OpenCL devices")
        return ()
    try:
        plats = _sorted_platforms(cl)
    except cl.Error as exc:  # no ICD loaded / no platform
        log.info("no OpenCL platform: %s", exc)
        return ()
    found = []
    for pi, plat in enumerate(plats):
        try:
            devices = _sorted_devices(cl, plat)
        except cl.Error as exc:
            log.warning("OpenCL platform %r lists no devices: %s", plat.name, exc)
            continue
        for di, dev in enumerate(devices):
            info = DeviceInfo(
                key=f"opencl:{pi}:{di}", backend="opencl", name=dev.name.strip(),
                vendor=dev.vendor.strip(), platform=plat.name.strip(),
                driver_version=dev.driver_version.strip(),
                device_type=_device_type(cl, dev.type),
                compute_units=int(dev.max_compute_units), global_mem=int(dev.global_mem_size),
                local_mem=int(dev.local_mem_size), fp64=bool(dev.double_fp_config),
                extra={"platform_version": plat.version.strip()},
            )
            found.append((info, dev))
    return tuple(found)


def calibrate(backend, n: int = 512, budget: float = 0.15, max_repeats: int = 20) -> float:
    """Float32 GEMM GFLOP/s of ``backend`` at n x n: the best of a short series.

    After a warm-up (compile, first touch), it times single products until ``budget``
    seconds have passed (at least 3, at most ``max_repeats``) and reports the fastest: on
    a shared machine the best run is the device's speed, the others measure the neighbours.
    """
    rng = np.random.default_rng(0)
    a = backend.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = backend.asarray(rng.standard_normal((n, n), dtype=np.float32))
    out = backend.zeros((n, n))
    backend.gemm(a, b, out=out)  # warm-up: compiles and packs
    backend.synchronize()
    best = float("inf")
    start = time.perf_counter()
    for i in range(max_repeats):
        t0 = time.perf_counter()
        backend.gemm(a, b, out=out)
        backend.synchronize()
        t1 = time.perf_counter()
        best = min(best, t1 - t0)
        if i >= 2 and t1 - start > budget:
            break
    return 2.0 * n**3 / best / 1e9
