"""OpenCL runtime: context, in-order queue, program and kernel caches, build errors.

Programs are built once per (device, file, build options, source hash) and kernel objects
are reused, so a hot path only sets arguments and enqueues. ``MAO_LAB_CL_DEBUG=1`` logs
every build with its options.
"""

from __future__ import annotations

import hashlib
import logging
import os

from ..._assets import asset_dir, read_asset
from ...errors import DependencyError, KernelBuildError

# PoCL reads this when the platform starts: pin its threads to cores (small kernels run
# ~1.7x slower when two threads share one core). The user's own setting wins.
os.environ.setdefault("POCL_AFFINITY", "1")

log = logging.getLogger(__name__)

try:
    import pyopencl as cl
except ImportError as exc:  # pragma: no cover - only without pyopencl
    raise DependencyError(
        f"the OpenCL backend needs pyopencl ({exc}); install it with "
        "pip install pyopencl 'pocl-binary-distribution' (the CPU driver)"
    ) from exc

# status code -> CL_* name, for readable errors
_STATUS = {
    getattr(cl.status_code, n): f"CL_{n}" for n in dir(cl.status_code) if n.isupper()
}


def status_name(code: int) -> str:
    """The CL_* name of an OpenCL status code."""
    return _STATUS.get(code, f"status {code}")


class Runtime:
    """One device's context, in-order queue and program cache.

    Example:
        >>> rt = get_backend("opencl").rt                     # doctest: +SKIP
        >>> k = rt.kernel("gemm.cl", "gemm", ("-DMR=8",))     # doctest: +SKIP
    """

    def __init__(self, device, label: str):
        self.device = device
        self.label = label
        self.ctx = cl.Context([device])
        self.queue = cl.CommandQueue(self.ctx)
        self._programs: dict[tuple, cl.Program] = {}
        self._kernels: dict[tuple, cl.Kernel] = {}
        self.include_dir = str(asset_dir("kernels"))

    def program(self, file: str, options: tuple[str, ...] = (), source: str | None = None):
        """Build (once) and return the program of ``kernels/<file>`` with ``options``.

        ``source`` overrides the file's text (used to inject a broken kernel in tests).
        Raises KernelBuildError naming the file, the device and the build log.
        """
        text = read_asset("kernels", file) if source is None else source
        digest = hashlib.sha1(text.encode()).hexdigest()
        key = (file, tuple(options), digest)
        prg = self._programs.get(key)
        if prg is not None:
            return prg
        opts = list(options) + ["-I", self.include_dir, "-cl-fast-relaxed-math"]
        if os.environ.get("MAO_LAB_CL_DEBUG"):
            log.warning("building %s for %s with %s", file, self.label, opts)
        prg = cl.Program(self.ctx, text)
        try:
            prg.build(options=opts)
        except cl.Error as exc:
            build_log = _build_log(prg, self.device, exc)
            raise KernelBuildError(
                f"OpenCL program '{file}' failed to build for device {self.label} "
                f"with options {' '.join(options) or '(none)'}. Build log:\n{build_log}",
                file=file, device=self.label, log=build_log,
            ) from exc
        self._programs[key] = prg
        return prg

    def kernel(self, file: str, name: str, options: tuple[str, ...] = ()):
        """A cached kernel object ``name`` from ``kernels/<file>`` built with ``options``.

        The object is shared: set its arguments and enqueue it in one go (the queue is
        in order, so arguments set for one launch cannot leak into another).
        """
        key = (file, name, tuple(options))
        k = self._kernels.get(key)
        if k is None:
            prg = self.program(file, options)
            try:
                k = getattr(prg, name)
            except (AttributeError, cl.Error) as exc:
                raise KernelBuildError(
                    f"OpenCL program '{file}' has no kernel {name!r} (device {self.label})",
                    file=file, device=self.label, log=str(exc),
                ) from exc
            self._kernels[key] = k
        return k


def _build_log(prg, device, exc: Exception) -> str:
    """The device's build log of a failed program (or the error text if unavailable)."""
    try:
        text = prg.get_build_info(device, cl.program_build_info.LOG).strip()
    except cl.Error:
        text = ""
    return text or str(exc)
