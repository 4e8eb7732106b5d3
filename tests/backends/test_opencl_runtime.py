"""The OpenCL runtime and the GEMM tuner: program cache, build errors, the tuning cache
(round trip, corruption, keys) on every OpenCL device."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mao_lab.backends import get_backend
from mao_lab.backends.inventory import opencl_devices
from mao_lab.errors import DeviceError, KernelBuildError

OPENCL = [info.key for info, _ in opencl_devices()]
pytestmark = pytest.mark.skipif(not OPENCL, reason="no OpenCL device")

BROKEN = "__kernel void broken(__global float *x) { x[0] = undeclared_thing; }\n"


@pytest.fixture(params=OPENCL)
def be(request):
    return get_backend(request.param)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MAO_LAB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MAO_LAB_TUNE", raising=False)
    return tmp_path


def fresh(be):
    """A second backend object on the same device (its own context; nothing cached)."""
    from mao_lab.backends.opencl import OpenCLBackend

    dev = dict((i.key, d) for i, d in opencl_devices())[be.key]
    return OpenCLBackend(be.info, dev)


def test_program_cache_reuses_programs_and_kernels(be):
    p1 = be.rt.program("gemm.cl", ("-DMR=4",))
    assert be.rt.program("gemm.cl", ("-DMR=4",)) is p1
    assert be.rt.program("gemm.cl", ("-DMR=2",)) is not p1
    k = be.rt.kernel("gemm.cl", "gemm", ("-DMR=4",))
    assert be.rt.kernel("gemm.cl", "gemm", ("-DMR=4",)) is k


def test_build_error_names_file_device_and_log(be):
    with pytest.raises(KernelBuildError) as info:
        be.rt.program("injected.cl", ("-DX=1",), source=BROKEN)
    err = info.value
    assert err.file == "injected.cl"
    assert be.info.name in err.device and be.key in err.device
    assert "undeclared_thing" in err.log
    msg = str(err)
    assert "injected.cl" in msg and be.info.name in msg and "undeclared_thing" in msg
    assert "-DX=1" in msg
    # the failure is not cached as a success, and a good source still builds
    with pytest.raises(KernelBuildError):
        be.rt.program("injected.cl", ("-DX=1",), source=BROKEN)
    assert be.rt.program("injected.cl", (), source=BROKEN.replace("undeclared_thing", "1"))


def test_unknown_kernel_name(be):
    with pytest.raises(KernelBuildError, match="has no kernel 'nope'"):
        be.rt.kernel("gemm.cl", "nope")


def test_defaults_without_cache(be, cache_dir):
    from mao_lab.backends.opencl.tuner import default_config, gemm_config

    assert gemm_config(be) == default_config(be)
    assert not (cache_dir / "gemm_tuning.json").exists()


def test_tuner_round_trip(be, cache_dir):
    from mao_lab.backends.opencl.tuner import (
        GemmConfig,
        cache_path,
        device_key,
        gemm_config,
        load_cache,
        tune_gemm,
    )

    b2 = fresh(be)
    cands = (GemmConfig(4, 16, 1, 4), GemmConfig(2, 8, 1, 2))
    best = tune_gemm(b2, candidates=cands, shapes=((40, 50, 30),), budget=0.01)
    assert best in cands and b2.gemm_config == best
    assert cache_path() == cache_dir / "gemm_tuning.json"
    entry = load_cache()[device_key(b2)]
    assert entry["config"] == best.as_dict() and entry["gflops"] > 0
    key = device_key(b2)
    assert be.info.platform in key and be.info.name in key and be.info.driver_version in key
    # a new backend on the same device starts with the cached configuration ...
    b3 = fresh(be)
    assert gemm_config(b3) == best and b3.gemm_config == best
    # ... and computes correctly with it
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((19, 23), np.float32), rng.standard_normal((23, 37), np.float32)
    got = b3.to_host(b3.gemm(b3.asarray(a), b3.asarray(b)))
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)
    # other devices' entries survive a rewrite
    data = json.loads(cache_path().read_text())
    data["devices"]["other | device | 1.0"] = {"config": GemmConfig().as_dict()}
    cache_path().write_text(json.dumps(data))
    tune_gemm(b2, candidates=cands[:1], shapes=((8, 8, 8),), budget=0.01)
    assert set(load_cache()) == {key, "other | device | 1.0"}


@pytest.mark.parametrize("text", [
    "{not json", '{"format": 1, "devices": []}', '{"format": 99, "devices": {}}',
    '{"format": 1, "devices": {"K": {"config": {"mr": -3}}}}', "[1, 2]",
])
def test_corrupt_cache_warns_and_uses_defaults(be, cache_dir, text):
    from mao_lab.backends.opencl.tuner import cache_path, default_config, gemm_config

    cache_path().write_text(text)
    with pytest.warns(UserWarning, match="corrupt GEMM tuning cache"):
        cfg = gemm_config(be)
    assert cfg == default_config(be)


def test_corrupt_cache_never_breaks_gemm(be, cache_dir):
    from mao_lab.backends.opencl.tuner import cache_path

    cache_path().write_text("\x00\x01garbage")
    b2 = fresh(be)
    with pytest.warns(UserWarning, match="corrupt"):
        got = b2.to_host(b2.gemm(b2.asarray(np.eye(3, dtype=np.float32)),
                                 b2.asarray(np.ones((3, 2), np.float32))))
    np.testing.assert_array_equal(got, np.ones((3, 2)))


def test_tune_rejects_non_opencl(cache_dir):
    from mao_lab.backends.opencl import tune_gemm

    with pytest.raises(DeviceError, match="needs an OpenCL backend"):
        tune_gemm(get_backend("numpy"))


def test_status_names():
    import pyopencl as cl

    from mao_lab.backends.opencl.runtime import status_name

    assert status_name(cl.status_code.BUILD_PROGRAM_FAILURE) == "CL_BUILD_PROGRAM_FAILURE"
    assert status_name(12345) == "status 12345"


def test_env_var_tunes_on_first_use(be, cache_dir, monkeypatch):
    """MAO_LAB_TUNE=1 and no cache entry: the first gemm runs the search and caches it."""
    from mao_lab.backends.opencl import tuner

    cand = tuner.GemmConfig(4, 16, 1, 4)
    monkeypatch.setattr(tuner, "CPU_CANDIDATES", (cand,))
    monkeypatch.setattr(tuner, "OTHER_CANDIDATES", (cand,))
    monkeypatch.setattr(tuner, "TUNE_SHAPES", ((16, 40, 24),))
    monkeypatch.setenv("MAO_LAB_TUNE", "1")
    b2 = fresh(be)
    got = b2.to_host(b2.gemm(b2.asarray(np.eye(4, dtype=np.float32)),
                             b2.asarray(np.full((4, 3), 2.0, np.float32))))
    np.testing.assert_array_equal(got, np.full((4, 3), 2.0))
    assert b2.gemm_config == cand
    assert tuner.load_cache()[tuner.device_key(b2)]["config"] == cand.as_dict()


def test_unwritable_cache_warns_and_keeps_the_result(be, tmp_path, monkeypatch):
    from mao_lab.backends.opencl.tuner import GemmConfig, tune_gemm

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("MAO_LAB_CACHE_DIR", str(blocker))
    b2 = fresh(be)
    b2.gemm_config = GemmConfig()  # (reading the unreadable cache would warn as well)
    b2.shape_configs = {}
    cand = GemmConfig(4, 16, 1, 4)
    with pytest.warns(UserWarning, match="could not write the GEMM tuning cache"):
        assert tune_gemm(b2, candidates=(cand,), shapes=((8, 40, 8),), budget=0.01) == cand
    assert b2.gemm_config == cand


def test_shape_tuner_round_trip(be, cache_dir):
    """tune_gemm_shapes caches its per-shape picks beside the device entry; a new backend
    on the device uses them, and products stay right whatever block a shape gets."""
    from mao_lab.backends.opencl.tuner import (
        GemmConfig,
        device_key,
        load_cache,
        shape_configs,
        tune_gemm,
        tune_gemm_shapes,
    )

    shapes = ((33, 7, 70, False, True), (9, 40, 1100, True, False))
    cands = (GemmConfig(4, 8, 1, 4), GemmConfig(8, 16, 1, 4))
    b2 = fresh(be)
    picks = tune_gemm_shapes(b2, shapes=shapes, candidates=cands, budget=0.005)
    assert set(picks) <= set(shapes) and set(picks.values()) <= set(cands)
    entry = load_cache()[device_key(b2)]
    assert {tuple(i["shape"]): GemmConfig(**i["config"])
            for i in entry["per_shape"]} == picks
    tune_gemm(b2, candidates=cands[:1], shapes=((8, 8, 8),), budget=0.005)  # picks stand
    b3 = fresh(be)
    assert shape_configs(b3) == picks and b3.shape_configs == picks
    rng = np.random.default_rng(5)
    for forced in ({}, {s: cands[0] for s in shapes}, {s: cands[1] for s in shapes}):
        b3.shape_configs = forced
        for m, n, k, ta, tb in shapes:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
            got = b3.to_host(b3.gemm(b3.asarray(a), b3.asarray(b), trans_a=ta, trans_b=tb,
                                     bias=b3.asarray(np.ones(n, np.float32))))
            want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b) + 1
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_corrupt_shape_entry_warns(be, cache_dir):
    from mao_lab.backends.opencl.tuner import GemmConfig, cache_path, shape_configs

    bad = {"config": GemmConfig().as_dict(),
           "per_shape": [{"shape": [3, -1, 2, False, False],
                          "config": GemmConfig().as_dict()}]}
    cache_path().write_text(json.dumps({"format": 1, "devices": {"k": bad}}))
    with pytest.warns(UserWarning, match="corrupt GEMM tuning cache"):
        assert shape_configs(be) == {}
