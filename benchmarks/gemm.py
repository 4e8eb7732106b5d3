"""GEMM benchmark: GFLOP/s of the numpy backend, the OpenCL backend (default and tuned
register blocks), numpy/OpenBLAS itself and CLBlast (when pyclblast imports), at square
sizes and at the training GEMM shapes of LeNet-5 and an MLP 784-300-10 (batch 64).

Each thread count runs in its own subprocess: PoCL reads its thread count when it starts
(POCL_MAX_PTHREAD_COUNT up to PoCL 3.x, POCL_CPU_MAX_CU_COUNT from 4.0; both are set).
Figures are the best sample of each implementation, the implementations taking turns
(interleaved) on every shape; packing is included (nothing is packed ahead of a call).
Usage: python benchmarks/gemm.py [--quick] [--json FILE] [--markdown FILE] [--threads 1,2]
[--retune].
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from _common import emit  # noqa: E402 - benchmarks/ is on sys.path when run

B = 64  # batch size of the training shapes
# (label, M, N, K, trans_a, trans_b): C (M, N) = op(A) @ op(B), A stored (K, M) if trans_a
SQUARE = [(f"n={n}", n, n, n, False, False) for n in (256, 512, 1024, 2048)]


def _layer(name: str, n_in: int, n_out: int, rows: int = B) -> list[tuple]:
    return [
        (f"{name} fwd x@W", rows, n_out, n_in, False, False),
        (f"{name} dX dY@W^T", rows, n_in, n_out, False, True),
        (f"{name} dW X^T@dY", n_in, n_out, rows, True, False),
    ]


MLP = _layer("mlp 784-300", 784, 300) + _layer("mlp 300-10", 300, 10)
# LeNet-5 on 28x28: conv1 6@5x5 pad 2 (28x28 out), conv2 16@5x5 (10x10 out), then
# 400-120-84-10; im2col GEMMs as the OpenCL backend runs them: forward cols (B*OH*OW,
# C*KH*KW) @ W^T, data gradient dY (B*OH*OW, F) @ W, filter gradient dY (F, B*OH*OW) @ cols.
P1, P2 = B * 28 * 28, B * 10 * 10
LENET = [
    ("lenet conv1 fwd cols@W^T", P1, 6, 25, False, True),
    ("lenet conv1 dW dY@cols", 6, 25, P1, False, False),
    ("lenet conv2 fwd cols@W^T", P2, 16, 150, False, True),
    ("lenet conv2 dX dY@W", P2, 150, 16, False, False),
    ("lenet conv2 dW dY@cols", 16, 150, P2, False, False),
] + _layer("lenet 400-120", 400, 120) + _layer("lenet 120-84", 120, 84) \
  + _layer("lenet 84-10", 84, 10)
GROUPS = {"MLP 784-300-10 step": MLP, "LeNet-5 step": LENET}
IMPLS = ("numpy backend", "OpenBLAS", "OpenCL default", "OpenCL tuned", "CLBlast")


def _shapes(quick: bool) -> list[tuple]:
    square = SQUARE[:3] if quick else SQUARE
    return square + MLP + LENET


def _interleaved(impls: dict, budget: float) -> dict:
    """Seconds per call of each implementation: the best sample of series run in turns.

    ``impls`` maps a name to (prepare, fn, sync): prepare() switches to that
    implementation and returns whether it changed anything (then one untimed call
    follows), fn() is one call. A sample
    runs fn() back to back for ~2 ms, then waits once (sync), as a training step does (one
    wait per step): launch latency counts, the wait only once. The implementations take
    turns, one sample each per round, for ~``budget`` seconds each, so a load change on a
    shared machine hits all of them alike instead of whichever ran at the time.
    """
    reps, best = {}, {}
    for name, (prepare, fn, sync) in impls.items():
        prepare()
        fn()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        reps[name] = max(1, min(100, int(2e-3 / max(time.perf_counter() - t0, 1e-7))))
        best[name] = float("inf")
    start, rounds = time.perf_counter(), 0
    while True:
        for name, (prepare, fn, sync) in impls.items():
            if prepare():
                fn()
                sync()
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            sync()
            best[name] = min(best[name], (time.perf_counter() - t0) / reps[name])
        rounds += 1
        if (rounds >= 5 and time.perf_counter() - start > budget * len(impls)) or rounds >= 200:
            return best


def _measure(shape, rng, np_be, cl_be, configs, clb, budget) -> dict:
    """Seconds per call of every implementation on one (label, M, N, K, ta, tb) shape."""
    label, m, n, k, ta, tb = shape
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    oa, ob = (a.T if ta else a), (b.T if tb else b)
    out = np.empty((m, n), np.float32)

    def nothing():
        return False

    impls = {
        "OpenBLAS": (nothing, lambda: np.matmul(oa, ob, out=out), nothing),
        "numpy backend": (nothing, lambda: np_be.gemm(a, b, trans_a=ta, trans_b=tb), nothing),
    }
    if cl_be is not None:
        da, db, dc = cl_be.asarray(a), cl_be.asarray(b), cl_be.empty((m, n))

        def use(cfg, per_shape):
            def prepare() -> bool:
                if cl_be.gemm_config == cfg and cl_be.shape_configs == per_shape:
                    return False
                cl_be.gemm_config, cl_be.shape_configs = cfg, per_shape
                return True
            return prepare

        for name, (cfg, per_shape) in configs.items():
            impls[name] = (use(cfg, per_shape),
                           lambda: cl_be.gemm(da, db, trans_a=ta, trans_b=tb, out=dc),
                           cl_be.synchronize)
        if clb is not None:
            impls["CLBlast"] = (nothing, lambda: clb(da, db, ta, tb, dc), cl_be.synchronize)
    row = _interleaved(impls, budget)
    if cl_be is not None:
        ref = oa.astype(np.float64) @ ob
        for name, (cfg, per_shape) in configs.items():
            use(cfg, per_shape)()
            dc.fill(np.nan)
            cl_be.gemm(da, db, trans_a=ta, trans_b=tb, out=dc)
            if not np.allclose(cl_be.to_host(dc), ref, rtol=1e-3, atol=1e-3 * np.sqrt(k)):
                raise SystemExit(f"OpenCL gemm ({name}) gave wrong results at {label}")
    return row


def _clblast(be):
    """A gemm(a, b, ta, tb, out) through pyclblast, or None when it is not importable."""
    try:
        import pyclblast
    except ImportError:
        return None

    def run(a, b, ta, tb, out):
        m, n = out.shape
        k = a.shape[0] if ta else a.shape[1]
        pyclblast.gemm(be.queue, m, n, k, a, b, out, a_ld=a.shape[1], b_ld=b.shape[1],
                       c_ld=n, a_transp=ta, b_transp=tb)
    return run


def worker(threads: int, quick: bool, retune: bool) -> dict:
    """Measure every implementation on every shape with ``threads`` threads."""
    from threadpoolctl import threadpool_limits

    from mao_lab.backends import get_backend
    from mao_lab.backends.inventory import opencl_devices
    from mao_lab.backends.opencl.tuner import (
        default_config,
        device_key,
        gemm_config,
        load_cache,
        shape_configs,
        tune_gemm,
        tune_gemm_shapes,
    )

    budget = 0.08 if quick else 0.3
    np_be = get_backend("numpy")
    cpu = [i.key for i, _ in opencl_devices() if i.device_type == "CPU"]
    cl_be = get_backend(cpu[0]) if cpu else None
    res: dict = {"threads": threads, "results": {}}
    if cl_be is not None:
        cached = device_key(cl_be) in load_cache()
        # no cache entry yet: search once (every later run reads the cache)
        if cached and not retune:
            tuned, per_shape = gemm_config(cl_be), shape_configs(cl_be)
        else:
            tuned = tune_gemm(cl_be)
            per_shape = tune_gemm_shapes(cl_be)
        res["device"] = (f"{cl_be.info.platform} {cl_be.info.driver_version} / "
                         f"{cl_be.info.name}, {cl_be.info.compute_units} compute unit(s)")
        res["config_default"] = default_config(cl_be).as_dict()
        res["config_tuned"] = tuned.as_dict()
        res["per_shape"] = {"x".join(str(int(v)) for v in s): _cfg(c.as_dict())
                            for s, c in per_shape.items()}
        clb = _clblast(cl_be)
    else:
        tuned, per_shape, clb = None, {}, None
    configs = {"OpenCL default": (default_config(cl_be), {}),
               "OpenCL tuned": (tuned, per_shape)} if cl_be else {}
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=threads, user_api="blas"):
        for shape in _shapes(quick):
            row = _measure(shape, rng, np_be, cl_be, configs, clb, budget)
            m, n, k = shape[1:4]
            res["results"][shape[0]] = {"flops": 2.0 * m * n * k, "seconds": row}
    return res


def _gf(entry: dict, impl: str) -> float | None:
    t = entry["seconds"].get(impl)
    return None if t is None else entry["flops"] / t / 1e9


def table(run: dict) -> list[str]:
    """Markdown table of one thread count: GFLOP/s per implementation and ratios."""
    impls = [i for i in IMPLS if any(i in e["seconds"] for e in run["results"].values())]
    head = ["shape (M x N x K)"] + impls + ["CL tuned / numpy"]
    if "CLBlast" in impls:
        head.append("CL tuned / CLBlast")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = dict(run["results"])
    for group, shapes in GROUPS.items():  # whole-step totals: sum of times of its GEMMs
        names = [s[0] for s in shapes]
        tot = {"flops": sum(rows[n]["flops"] for n in names), "seconds": {}}
        for impl in impls:
            if all(impl in rows[n]["seconds"] for n in names):
                tot["seconds"][impl] = sum(rows[n]["seconds"][impl] for n in names)
        rows[f"**{group} (all GEMMs)**"] = tot
    dims = {s[0]: f" ({s[1]}x{s[2]}x{s[3]})" for s in SQUARE + MLP + LENET}
    for label, e in rows.items():
        cells = [label + ("" if label.startswith("n=") else dims.get(label, ""))]
        for impl in impls:
            g = _gf(e, impl)
            cells.append("-" if g is None else f"{g:.1f}")
        g_cl, g_np = _gf(e, "OpenCL tuned"), _gf(e, "numpy backend")
        cells.append(f"{g_cl / g_np:.2f}x" if g_cl and g_np else "-")
        if "CLBlast" in impls:
            g_b = _gf(e, "CLBlast")
            cells.append(f"{g_cl / g_b:.1f}x" if g_cl and g_b else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(runs: list[dict]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"numpy {np.__version__}, Python {platform.python_version()}, "
        f"load average {load:.2f} at the end of the run.",
    ]
    if os.environ.get("OPENBLAS_CORETYPE"):
        out.append(f"Note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} was set.")
    for run in runs:
        out += ["", f"### {run['threads']} thread(s)", ""]
        if "device" in run:
            out += [f"OpenCL device: {run['device']}; default block "
                    f"{_cfg(run['config_default'])}, tuned {_cfg(run['config_tuned'])}"
                    + ("; per-shape picks (M x N x K x trans_a x trans_b): "
                       + ", ".join(f"{s} {c}" for s, c in run["per_shape"].items())
                       if run.get("per_shape") else "") + ".", ""]
        out += table(run)
    return "\n".join(out) + "\n"


def _cfg(c: dict) -> str:
    extra = ("" if c.get("local1", True) else ", driver work-groups") \
        + (", A packed" if c.get("pack_a") else "")
    return (f"{c['mr']}x{c['vw'] * c['nv']} (float{c['vw']} x{c['nv']}, K unroll {c['ku']}"
            f"{extra})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes, shorter series")
    ap.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--retune", action="store_true",
                    help="re-run the GEMM autotuners (whole-device and per-shape) for every "
                         "thread count")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        json.dump(worker(args.worker, args.quick, args.retune), sys.stdout)
        return 0
    runs = []
    for t in (int(x) for x in args.threads.split(",")):
        env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(t), POCL_CPU_MAX_CU_COUNT=str(t),
                   POCL_AFFINITY="1",
                   OMP_NUM_THREADS=str(t))
        cmd = [sys.executable, __file__, "--worker", str(t)] + ["--quick"] * args.quick \
            + ["--retune"] * args.retune  # tunings are kept per compute-unit count
        print(f"measuring with {t} thread(s)...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        runs.append(json.loads(proc.stdout))
    text = report(runs)
    return emit(text, runs, args.json, args.markdown)


if __name__ == "__main__":
    sys.exit(main())
