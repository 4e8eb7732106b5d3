"""Training throughput: samples/s of zoo models on every mao_lab backend beside PyTorch CPU.

Batch 64, SGD (momentum 0.9 for the MNIST nets, as their zoo defaults), the seeded 4,000-digit
training split of the bundled MNIST sample (iris: its 120 training rows repeated to 3,840).
Every trainer runs in its own process (so idle OpenBLAS, OpenMP or PoCL worker threads of
another runtime never share it) and first runs one warm-up epoch; epochs are then timed
round-robin (numpy, OpenCL, PyTorch, numpy, ...) so a busy machine slows all alike; the
figure is the median epoch. Threads: BLAS via threadpoolctl, torch.set_num_threads, PoCL
via POCL_MAX_PTHREAD_COUNT (PoCL <= 3.x) and POCL_CPU_MAX_CU_COUNT (4.0+). PyTorch
starts from the same weights (copied). Usage: python benchmarks/train.py [--quick] [--json FILE]
[--markdown FILE] [--threads 1,2] [--models iris,fc300,...] [--devices numpy,opencl:0:0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
from _common import emit  # noqa: E402 - benchmarks/ is on sys.path when run

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODELS = ("iris", "fc300", "fc300_100", "lenet1", "lenet5")
BATCH = 64


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The training arrays a zoo model is benchmarked on."""
    from mao_lab.data import load_iris, load_mnist_sample

    if name == "iris":
        x, y = load_iris().split([0.8, 0.2], seed=0, stratify=True)[0].numpy()
        return np.tile(x, (32, 1)), np.tile(y, 32)
    return load_mnist_sample().split([0.8, 0.2], seed=0, stratify=True)[0].numpy()


def _error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"error: {type(exc).__name__}: {msg[0][:120] if msg else ''}"


def serve(name: str, key: str, threads: int) -> int:
    """One trainer in this process: read a seed per line, train one epoch, print seconds.

    Each trainer lives in its own process so that idle worker threads of another runtime
    (OpenBLAS, PyTorch's OpenMP, PoCL) never share its process while it is timed.
    """
    from threadpoolctl import threadpool_limits

    from mao_lab import zoo

    limits = threadpool_limits(limits=threads, user_api="blas")  # noqa: F841 - kept alive
    try:
        x, y = load(name)
        model = zoo.get(name, seed=0)
        if key == "pytorch":
            import torch
            from _torch_zoo import TorchTrainer

            torch.set_num_threads(threads)
            opt = model.optimizer
            tt = TorchTrainer(model, x, y, opt.learning_rate, getattr(opt, "momentum", 0.0))
            run = lambda seed: tt.epoch(BATCH)  # noqa: E731
            print(f"ready {len(x)} {torch.__version__}", flush=True)
        else:
            if key == NUMPY_BLAS:  # the numpy backend leaving the threads to OpenBLAS
                os.environ["MAO_LAB_NUMPY_THREADS"] = "1"
            elif key != "numpy":
                model.to(key)

            def run(seed):
                model.fit(x, y, batch_size=BATCH, epochs=1, seed=seed, verbose=0)

            print(f"ready {len(x)}", flush=True)
        for line in sys.stdin:
            if line.strip() == "quit":
                break
            t0 = time.perf_counter()
            run(int(line))
            print(f"{time.perf_counter() - t0:.6f}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a missing kernel is a table entry
        print(_error(exc).replace("\n", " "), flush=True)
    return 0


def _ask(proc, msg: str | None) -> str:
    if msg is not None:
        proc.stdin.write(msg + "\n")
        proc.stdin.flush()
    return (proc.stdout.readline() or "error: the trainer process exited").strip()


def worker(threads: int, quick: bool, models: list[str], devices: list[str]) -> dict:
    """Samples/s of every model on every device and PyTorch, with ``threads`` threads.

    Epochs are timed round-robin over one process per trainer (rep 0 is a warm-up).
    """
    reps = 2 if quick else 5
    env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(threads),
               POCL_CPU_MAX_CU_COUNT=str(threads), POCL_AFFINITY="1",
               OMP_NUM_THREADS=str(threads))
    res: dict = {"threads": threads, "torch": "?", "results": {}}
    for name in models:
        procs, row, times = {}, {}, {}
        for key in devices + ["pytorch"]:
            cmd = [sys.executable, os.path.abspath(__file__), "--serve", key, "--models", name,
                   "--threads", str(threads)]
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
            reply = _ask(proc, None)
            if reply.startswith("ready"):
                procs[key], times[key] = proc, []
                if key == "pytorch" and len(reply.split()) > 2:
                    res["torch"] = reply.split()[2]
            else:
                row[key] = reply
                proc.wait()
        n = len(load(name)[0])
        for rep in range(reps + 1):
            for key, proc in list(procs.items()):
                reply = _ask(proc, str(rep))
                try:
                    dt = float(reply)
                except ValueError:
                    row[key] = reply
                    proc.wait()
                    del procs[key]
                    continue
                if rep:
                    times[key].append(dt)
        for key, proc in procs.items():
            _ask(proc, "quit")
            proc.wait()
            row[key] = n / statistics.median(times[key])
        res["results"][name] = row
        print(f"  {threads} thread(s) {name}: " + ", ".join(
            f"{k} {v:,.0f}/s" if not isinstance(v, str) else f"{k} {v}"
            for k, v in row.items()), file=sys.stderr, flush=True)
    return res


def table(run: dict, devices: list[str]) -> list[str]:
    head = "| model | PyTorch CPU | " + " | ".join(
        f"{d} | {d} / PyTorch" for d in devices) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(devices))]
    for name, row in run["results"].items():
        ref = row.get("pytorch")
        cells = [name, f"{ref:,.0f}" if isinstance(ref, float) else str(ref)]
        for d in devices:
            v = row.get(d, "n/a")
            if isinstance(v, float):
                ratio = f"**{v / ref:.2f}x**" if isinstance(ref, float) else "—"
                cells += [f"{v:,.0f}", ratio]
            else:
                cells += [str(v), "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(runs: list[dict], devices: list[str], names: dict[str, str]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = [f"Training samples/s, batch {BATCH}, median of the timed epochs. Machine: "
           f"{platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, PyTorch "
           f"{runs[0]['torch'] if runs else '?'}, load average {load:.2f} at the end."]
    for d in devices:
        if d == NUMPY_BLAS:
            out.append(f"{d} = the numpy backend with MAO_LAB_NUMPY_THREADS=1: OpenBLAS threads "
                       "each GEMM itself (the numpy column splits ops over the cores itself)")
        elif d != "numpy":
            out.append(f"{d} = {names.get(d, d)}")
    for run in runs:
        out += ["", f"### {run['threads']} thread(s)", ""] + table(run, devices)
    return "\n".join(out) + "\n"


NUMPY_BLAS = "numpy-blas"  # pseudo device key: see report()


def _devices(spec: str | None) -> tuple[list[str], dict[str, str]]:
    from mao_lab.backends import available_keys
    from mao_lab.backends.inventory import opencl_devices

    names = {i.key: f"{i.platform} / {i.name}" for i, _ in opencl_devices()}
    keys = spec.split(",") if spec else available_keys()
    return keys, names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 timed epochs instead of 5")
    ap.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo names")
    ap.add_argument("--devices", help="comma-separated backend keys (default: all), or numpy-blas "
                    "(the numpy backend with OpenBLAS threading each GEMM)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    models = args.models.split(",")
    if args.serve:
        return serve(models[0], args.serve, int(args.threads))
    devices, names = _devices(args.devices)
    runs = []
    for t in (int(v) for v in args.threads.split(",")):
        print(f"measuring with {t} thread(s)...", file=sys.stderr, flush=True)
        runs.append(worker(t, args.quick, models, devices))
    text = report(runs, devices, names)
    return emit(text, runs, args.json, args.markdown)


if __name__ == "__main__":
    sys.exit(main())
