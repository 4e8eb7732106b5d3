"""Conv benchmark: conv2d forward, backward-data and backward-filter at the LeNet shapes
(batch 64) and one wider layer, for the numpy backend, the OpenCL backend's two algorithms
(direct kernel, im2col + GEMM) and PyTorch CPU when it imports; ratios in the same run.

OpenCL timings enqueue a series of calls and wait once (as a training step does), so they
include kernel launches and scratch reuse but no per-call wait. Figures are the median of
a few series. Usage:
python benchmarks/conv.py [--quick] [--cpu-time] [--only TEXT] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

os.environ.setdefault("POCL_AFFINITY", "1")  # before pyopencl loads PoCL

import numpy as np  # noqa: E402

B = 64
# (label, x shape, w shape, stride, padding)
SHAPES = [
    ("LeNet-5 conv1 1->6 5x5 pad 2", (B, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2, 2, 2)),
    ("LeNet-5 conv2 6->16 5x5", (B, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0, 0, 0)),
    ("LeNet-1 conv1 1->4 5x5", (B, 1, 28, 28), (4, 1, 5, 5), (1, 1), (0, 0, 0, 0)),
    ("LeNet-1 conv2 4->12 5x5", (B, 4, 12, 12), (12, 4, 5, 5), (1, 1), (0, 0, 0, 0)),
    ("wide 32->64 3x3 pad 1", (B, 32, 16, 16), (64, 32, 3, 3), (1, 1), (1, 1, 1, 1)),
]
PASSES = ("forward", "backward data", "backward filter")


CLOCK = time.perf_counter  # --cpu-time: process CPU time (all threads), steadier under load


def _cpu_clock() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _series(fn, sync, reps: int, series: int) -> float:
    """Median seconds per call over ``series`` runs of ``reps`` calls with one wait each."""
    fn()
    sync()
    times = []
    for _ in range(series):
        t0 = CLOCK()
        for _ in range(reps):
            fn()
        sync()
        times.append((CLOCK() - t0) / reps)
    return statistics.median(times)


def _calls(be, x, w, b, dy, stride, padding):
    xs = tuple(x.shape)
    return {
        "forward": lambda: be.conv2d_forward(x, w, b, stride=stride, padding=padding,
                                             activation="relu"),
        "backward data": lambda: be.conv2d_backward_data(dy, w, xs, stride=stride,
                                                         padding=padding),
        "backward filter": lambda: be.conv2d_backward_filter(dy, x, tuple(w.shape),
                                                             stride=stride, padding=padding),
    }


def _torch_calls(torch, x, w, b, dy, stride, padding):
    if padding[0] != padding[1] or padding[2] != padding[3]:
        return None
    pad = (padding[0], padding[2])
    xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
    F = torch.nn.functional
    aten = torch.ops.aten

    def back(mask):
        return aten.convolution_backward(dyt, xt, wt, [wt.shape[0]], list(stride), list(pad),
                                         [1, 1], False, [0, 0], 1, mask)

    return {
        "forward": lambda: F.relu(F.conv2d(xt, wt, bt, stride=stride, padding=pad)),
        "backward data": lambda: back([True, False, False]),
        "backward filter": lambda: back([False, True, False]),
    }


def run(quick: bool) -> tuple[list[str], list[dict]]:
    from mao_lab.backends import available_keys, get_backend

    reps, series = (5, 3) if quick else (20, 5)
    nb = get_backend("numpy")
    cl_keys = [k for k in available_keys() if k != "numpy"]
    cl = get_backend(cl_keys[0]) if cl_keys else None
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for label, xs, ws, stride, padding in SHAPES:
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        b = rng.standard_normal(ws[0], dtype=np.float32)
        dy = nb.conv2d_forward(x, w, b, stride=stride, padding=padding)
        res = {p: {} for p in PASSES}
        for p, fn in _calls(nb, x, w, b, dy, stride, padding).items():
            res[p]["numpy"] = _series(fn, lambda: None, reps, series)
        if cl is not None:
            dev = [cl.asarray(a) for a in (x, w, b, dy)]
            for algo in ("direct", "im2col"):
                cl.conv_algorithm = algo
                for p, fn in _calls(cl, *dev, stride, padding).items():
                    res[p][f"OpenCL {algo}"] = _series(fn, cl.synchronize, reps, series)
            cl.conv_algorithm = "auto"
            for p, fn in _calls(cl, *dev, stride, padding).items():
                res[p]["OpenCL auto"] = _series(fn, cl.synchronize, reps, series)
        if torch is not None:
            calls = _torch_calls(torch, x, w, b, dy, stride, padding)
            for p, fn in (calls or {}).items():
                res[p]["PyTorch CPU"] = _series(fn, lambda: None, reps, series)
        for p in PASSES:
            rows.append({"shape": label, "pass": p, **res[p]})
    cols = ["numpy", "OpenCL direct", "OpenCL im2col", "OpenCL auto", "PyTorch CPU"]
    return [c for c in cols if any(c in r for r in rows)], rows


def markdown(cols: list[str], rows: list[dict]) -> str:
    head = ["shape", "pass"] + [f"{c} (us)" for c in cols] + ["auto / numpy"]
    if "PyTorch CPU" in cols:
        head.append("auto / PyTorch")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["shape"], r["pass"]]
        cells += [f"{r[c] * 1e6:.0f}" if c in r else "-" for c in cols]
        auto = r.get("OpenCL auto")
        # ratio = speed-up: how many times faster the OpenCL backend is than the reference
        cells.append(f"{r['numpy'] / auto:.2f}x" if auto else "-")
        if "PyTorch CPU" in cols:
            t = r.get("PyTorch CPU")
            cells.append(f"{t / auto:.2f}x" if auto and t else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by process CPU seconds (all threads) instead of wall clock")
    ap.add_argument("--only", help="run only shapes whose label contains this text")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = _cpu_clock
    if args.only:
        SHAPES[:] = [s for s in SHAPES if args.only in s[0]]
    cols, rows = run(args.quick)
    table = markdown(cols, rows)
    clock = "process CPU time" if args.cpu_time else "wall time"
    print(f"conv2d, batch {B}, float32, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {clock} per call; ratios > 1 mean OpenCL is faster\n")
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
