"""The GEMM autotuner: register-block shapes searched per device, cached on disk as JSON.

The cache (``$MAO_LAB_CACHE_DIR`` or ``~/.cache/mao_lab``, file ``gemm_tuning.json``) is
keyed by platform, device name, driver version and compute units. Without an entry the
backend uses safe defaults; ``tune_gemm(backend)`` or ``MAO_LAB_TUNE=1`` runs the search,
and ``tune_gemm_shapes(backend)`` picks a block per training GEMM shape (cached beside
it). A corrupt cache is ignored with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ...errors import DeviceError, KernelBuildError

log = logging.getLogger(__name__)

CACHE_FILE = "gemm_tuning.json"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class GemmConfig:
    """One register-block shape of kernels/gemm.cl: an ``mr x (vw*nv)`` block of C per
    work-item, K unrolled by ``ku``; ``local1`` runs 1x1 work-groups (else driver's choice);
    ``pack_a`` packs A into row panels first (else the kernel reads A in place).
    """

    mr: int = 8
    vw: int = 16
    nv: int = 2
    ku: int = 4
    local1: bool = True
    pack_a: bool = False

    def __post_init__(self) -> None:
        ok = (
            all(isinstance(v, int) and not isinstance(v, bool) for v in (self.mr, self.vw,
                                                                        self.nv, self.ku))
            and 1 <= self.mr <= 32 and self.vw in (1, 2, 4, 8, 16) and 1 <= self.nv <= 8
            and 1 <= self.ku <= 16 and isinstance(self.local1, bool)
            and isinstance(self.pack_a, bool)
        )
        if not ok:
            raise ValueError(f"invalid GemmConfig {asdict(self)}")

    @property
    def nr(self) -> int:
        """Columns of C per work-item."""
        return self.vw * self.nv

    def options(self) -> tuple[str, ...]:
        """The register-block -D defines of gemm.cl."""
        return (f"-DMR={self.mr}", f"-DVW={self.vw}", f"-DNV={self.nv}", f"-DKU={self.ku}")

    def pack_options(self) -> tuple[str, ...]:
        """The -D defines of gemm_pack.cl."""
        return (f"-DMR={self.mr}", f"-DNR={self.nr}")

    def local_size(self, dims: int = 2) -> tuple[int, ...] | None:
        return (1,) * dims if self.local1 else None

    def as_dict(self) -> dict:
        return asdict(self)


CPU_DEFAULT = GemmConfig(8, 16, 2, 4, True)
OTHER_DEFAULT = GemmConfig(4, 4, 2, 4, False)  # GPUs and accelerators: driver picks groups

CPU_CANDIDATES = (
    CPU_DEFAULT, GemmConfig(6, 16, 4, 4), GemmConfig(4, 16, 4, 4), GemmConfig(12, 16, 2, 4),
    GemmConfig(8, 16, 2, 2), GemmConfig(8, 16, 2, 8), GemmConfig(8, 8, 4, 4),
    GemmConfig(4, 16, 2, 4), GemmConfig(8, 16, 1, 4), GemmConfig(8, 16, 2, 4, False),
)
MARGIN = 1.03  # a candidate must beat the default by 3% (timings on shared machines jitter)
OTHER_CANDIDATES = (
    OTHER_DEFAULT, GemmConfig(4, 4, 1, 4, False), GemmConfig(8, 4, 2, 4, False),
    GemmConfig(4, 8, 1, 4, False), GemmConfig(2, 4, 1, 4, False), GemmConfig(1, 4, 1, 4, False),
)
# (M, N, K): two square problems (at 1024 the block's own speed dominates, at 512 packing
# and launch costs weigh more) and the MLP 784-300-10 (batch 64) forward/backward shapes
TUNE_SHAPES = ((512, 512, 512), (1024, 1024, 1024), (64, 300, 784), (784, 300, 64),
               (64, 784, 300))


def _dense(n_in: int, n_out: int, b: int = 64) -> tuple:
    # (M, N, K, trans_a, trans_b) of a Dense layer's forward, data and weight gradients
    return ((b, n_out, n_in, False, False), (b, n_in, n_out, False, True),
            (n_in, n_out, b, True, False))


# Every GEMM of a training step of the MLP 784-300-10 and of LeNet-5 (batch 64, im2col
# convolutions as the OpenCL backend runs them), for tune_gemm_shapes
TRAINING_SHAPES = _dense(784, 300) + _dense(300, 10) + (
    (50176, 6, 25, False, True), (6, 25, 50176, False, False), (6400, 16, 150, False, True),
    (6400, 150, 16, False, False), (16, 150, 6400, False, False),
) + _dense(400, 120) + _dense(120, 84) + _dense(84, 10)
# per-shape candidates: the whole-device ones and narrow blocks for thin or narrow outputs
# (A packed into row panels first: on two threads it sometimes pays for the short-K,
# transposed-A weight gradients such as 784 x 300 x 64)
SHAPE_CANDIDATES = CPU_CANDIDATES + (
    GemmConfig(4, 16, 1, 4), GemmConfig(8, 8, 1, 4), GemmConfig(4, 8, 1, 4),
    GemmConfig(16, 8, 1, 4), GemmConfig(12, 16, 1, 4), GemmConfig(8, 16, 2, 4, True, True),
    GemmConfig(4, 16, 4, 4, True, True),
)


def cache_path() -> Path:
    """Where tuning results live: $MAO_LAB_CACHE_DIR or ~/.cache/mao_lab."""
    root = os.environ.get("MAO_LAB_CACHE_DIR") or os.path.join("~", ".cache", "mao_lab")
    return Path(root).expanduser() / CACHE_FILE


def device_key(backend) -> str:
    """Cache key of a backend's device: platform, device name, driver version and compute
    units (a CPU driver limited to fewer threads, e.g. POCL_MAX_PTHREAD_COUNT, is tuned
    on its own: the best block differs)."""
    i = backend.info
    return f"{i.platform} | {i.name} | {i.driver_version} | {i.compute_units} CU"


def default_config(backend) -> GemmConfig:
    """Safe defaults: the CPU register block on CPUs, a small block elsewhere."""
    return CPU_DEFAULT if backend.info.device_type == "CPU" else OTHER_DEFAULT


def load_cache(path: Path | None = None) -> dict:
    """The cache's ``devices`` mapping; {} when absent, or (with a warning) when corrupt."""
    path = path or cache_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        warnings.warn(f"cannot read the GEMM tuning cache {path}: {exc}; using defaults",
                      stacklevel=2)
        return {}
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise ValueError(f"expected a JSON object with format {CACHE_FORMAT}")
        devs = data["devices"]
        if not isinstance(devs, dict):
            raise ValueError("'devices' is not an object")
        for entry in devs.values():
            GemmConfig(**entry["config"])
            for item in entry.get("per_shape", ()):
                _shape_key(item["shape"]), GemmConfig(**item["config"])
        return devs
    except (ValueError, KeyError, TypeError) as exc:
        warnings.warn(
            f"ignoring the corrupt GEMM tuning cache {path} ({exc}); using default GEMM "
            "settings. Delete the file or run mao_lab.backends.opencl.tune_gemm() to rewrite "
            "it", stacklevel=2,
        )
        return {}


def _shape_key(shape) -> tuple[int, int, int, bool, bool]:
    """(M, N, K, trans_a, trans_b) from a cached list, or ValueError."""
    m, n, k, ta, tb = shape
    if not all(isinstance(v, int) and v > 0 for v in (m, n, k)) or not (
            isinstance(ta, bool) and isinstance(tb, bool)):
        raise ValueError(f"bad GEMM shape {shape!r}")
    return m, n, k, ta, tb


def shape_configs(backend) -> dict:
    """The per-shape blocks cached for ``backend``'s device: {(M, N, K, ta, tb): config}."""
    entry = load_cache().get(device_key(backend)) or {}
    return {_shape_key(i["shape"]): GemmConfig(**i["config"])
            for i in entry.get("per_shape", ())}


def save_entry(key: str, entry: dict, path: Path | None = None) -> Path:
    """Write one device's entry (atomically; a corrupt file is replaced)."""
    path = path or cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        devs = load_cache(path)
    devs[key] = entry
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": CACHE_FORMAT, "devices": devs}, indent=1),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def _save_or_warn(key: str, entry: dict) -> None:
    """Cache a tuning result; an unwritable cache costs a warning, not the result."""
    try:
        save_entry(key, entry)
    except OSError as exc:
        warnings.warn(f"could not write the GEMM tuning cache {cache_path()}: {exc}; the "
                      "tuned configuration is used in this process only", stacklevel=3)


def gemm_config(backend) -> GemmConfig:
    """The configuration a backend starts with: cache entry, else MAO_LAB_TUNE=1 search,
    else defaults."""
    entry = load_cache().get(device_key(backend))
    if entry is not None:
        return GemmConfig(**entry["config"])
    if os.environ.get("MAO_LAB_TUNE", "").strip() not in ("", "0"):
        backend.gemm_config = default_config(backend)  # what the search falls back to
        return tune_gemm(backend)
    return default_config(backend)


def _time_gemm(backend, a, b, out, budget: float = 0.1, ta=False, tb=False) -> float:
    """Best seconds per call over a short series (the best run is the device's speed)."""
    backend.gemm(a, b, out=out, trans_a=ta, trans_b=tb)  # compile + warm up
    backend.synchronize()
    best, start, i = float("inf"), time.perf_counter(), 0
    while i < 3 or (time.perf_counter() - start < budget and i < 50):
        t0 = time.perf_counter()
        backend.gemm(a, b, out=out, trans_a=ta, trans_b=tb)
        backend.synchronize()
        best = min(best, time.perf_counter() - t0)
        i += 1
    return best


def _check(backend) -> bool:
    """Does the current configuration compute an odd-shaped product correctly?"""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal((29, 45)).astype(np.float32)
    got = backend.to_host(backend.gemm(backend.asarray(a), backend.asarray(b)))
    return bool(np.allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4))


def tune_gemm(backend, candidates=None, shapes=None, budget: float = 0.1,
              save: bool = True) -> GemmConfig:
    """Search register-block shapes on ``backend``, keep and cache the fastest.

    Each candidate is built, checked against numpy on an odd shape and timed on
    ``shapes`` ((M, N, K) triples, best of ``budget`` seconds each); the score is the
    geometric mean GFLOP/s. The first candidate (the default) stays unless another beats
    it by ``MARGIN``. Returns the winner, which the backend uses from now on (and every
    later process, via the cache).

    Example:
        >>> from mao_lab.backends.opencl import tune_gemm
        >>> cfg = tune_gemm(mao_lab.get_backend("opencl"))  # doctest: +SKIP
    """
    if getattr(backend, "kind", None) != "opencl":
        raise DeviceError(f"tune_gemm needs an OpenCL backend; received {backend!r}")
    if candidates is None:
        cpu = backend.info.device_type == "CPU"
        candidates = CPU_CANDIDATES if cpu else OTHER_CANDIDATES
    shapes = TUNE_SHAPES if shapes is None else shapes
    rng = np.random.default_rng(0)
    arrays = []
    for m, n, k in shapes:
        a = backend.asarray(rng.standard_normal((m, k), dtype=np.float32))
        b = backend.asarray(rng.standard_normal((k, n), dtype=np.float32))
        arrays.append((a, b, backend.empty((m, n)), 2.0 * m * n * k))
    previous = backend.gemm_config
    results = []
    for cfg in candidates:
        backend.gemm_config = cfg
        try:
            if not _check(backend):
                log.warning("gemm config %s gives wrong results; skipped", cfg)
                continue
            rates = [fl / _time_gemm(backend, a, b, o, budget) / 1e9 for a, b, o, fl in arrays]
        except (KernelBuildError, DeviceError, RuntimeError) as exc:
            log.warning("gemm config %s failed (%s); skipped", cfg, exc)
            continue
        score = float(np.exp(np.mean(np.log(rates))))
        log.info("gemm config %s: %.1f GFLOP/s (%s)", cfg, score, rates)
        results.append((score, cfg, rates))
    if not results:
        backend.gemm_config = previous
        raise DeviceError(f"tune_gemm: no candidate configuration works on {backend!r}")
    score, best, rates = max(results, key=lambda t: t[0])
    first = results[0]
    if first[1] == candidates[0] and score < first[0] * MARGIN:
        score, best, rates = first
    backend.gemm_config = best
    if save:
        entry = {
            "config": best.as_dict(), "gflops": round(score, 2),
            "shapes": [list(s) for s in shapes], "rates": [round(r, 2) for r in rates],
            "tuned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old = load_cache().get(device_key(backend)) or {}
        if "per_shape" in old:  # tune_gemm_shapes' picks stand (each is a whole config)
            entry["per_shape"] = old["per_shape"]
        _save_or_warn(device_key(backend), entry)
    return best


def _confirmed(backend, picks: dict, key, cfg: GemmConfig, args: tuple) -> bool:
    """Does ``cfg`` beat the backend's rule for ``key`` by MARGIN twice more, timed
    alternately? (One best-of series can be lucky on a shared machine.)"""
    for _ in range(2):
        backend.shape_configs = picks
        t_rule = _time_gemm(backend, *args)
        backend.shape_configs = {**picks, key: cfg}
        if _time_gemm(backend, *args) * MARGIN >= t_rule:
            return False
    return True


def tune_gemm_shapes(backend, shapes=None, candidates=None, budget: float = 0.05,
                     save: bool = True) -> dict:
    """Pick a register block per GEMM shape (default: every training GEMM of the MLP
    784-300-10 and LeNet-5), cache the picks beside the device's entry, and use them.

    For each (M, N, K, trans_a, trans_b) the backend's own choice (its rules for thin,
    tall and narrow products) is timed against each candidate forced for that shape; the
    fastest replaces it only when faster by ``MARGIN`` in that series and in two more,
    timed alternately with the rule. Returns {shape: config} of the
    shapes whose block differs from the backend's rule.

    Example:
        >>> from mao_lab.backends.opencl.tuner import tune_gemm_shapes
        >>> picks = tune_gemm_shapes(mao_lab.get_backend("opencl"))  # doctest: +SKIP
    """
    if getattr(backend, "kind", None) != "opencl":
        raise DeviceError(f"tune_gemm_shapes needs an OpenCL backend; received {backend!r}")
    shapes = TRAINING_SHAPES if shapes is None else shapes
    if candidates is None:
        candidates = SHAPE_CANDIDATES if backend.info.device_type == "CPU" else OTHER_CANDIDATES
    rng = np.random.default_rng(0)
    picks: dict = {}
    backend.shape_configs = {}
    for m, n, k, ta, tb in shapes:
        key = _shape_key((int(m), int(n), int(k), bool(ta), bool(tb)))
        a = backend.asarray(rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32))
        b = backend.asarray(rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32))
        out = backend.empty((m, n))
        want = (backend.to_host(a).T if ta else backend.to_host(a)).astype(np.float64) @ (
            backend.to_host(b).T if tb else backend.to_host(b))
        best, best_t = None, _time_gemm(backend, a, b, out, budget, ta, tb) / MARGIN
        for cfg in candidates:
            backend.shape_configs = {**picks, key: cfg}
            try:
                t = _time_gemm(backend, a, b, out, budget, ta, tb)
                ok = np.allclose(backend.to_host(out), want, rtol=1e-3, atol=1e-3 * np.sqrt(k))
            except (KernelBuildError, DeviceError, RuntimeError) as exc:
                log.warning("gemm config %s failed on %s (%s); skipped", cfg, key, exc)
                continue
            if ok and t < best_t:
                best, best_t = cfg, t
        if best is not None and _confirmed(backend, picks, key, best, (a, b, out, budget, ta,
                                                                         tb)):
            picks[key] = best
        backend.shape_configs = dict(picks)
        log.info("gemm shape %s: %s", key, best or "backend rule")
    if save:
        entry = load_cache().get(device_key(backend)) or {
            "config": backend.gemm_config.as_dict()}
        entry["per_shape"] = [{"shape": list(s), "config": c.as_dict()}
                              for s, c in picks.items()]
        _save_or_warn(device_key(backend), entry)
    return picks
