"""Data-layer benchmark: batching the MNIST sample (Dataset.batches vs numpy indexing), Arrow
IPC encode/decode vs pickling the numpy arrays, and an out-of-core scan of a synthetic
Parquet dataset (>= 2 GB, written to a temporary directory and deleted afterwards) with the
peak RSS of the scanning process.

Usage: python benchmarks/data_scan.py [--gb 2.0] [--quick] [--markdown FILE]
The scan runs in a fresh subprocess so its peak RSS is its own (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mao_lab.data import Dataset, from_numpy, load_mnist_sample  # noqa: E402
from mao_lab.data.loaders import parquet_table  # noqa: E402

ROW_FEATURES = 784  # float32 features per synthetic row (3,136 bytes)


def _best(fn, budget: float = 1.0, min_runs: int = 3) -> float:
    """Best wall time of fn() over a series lasting about ``budget`` seconds."""
    times: list[float] = []
    end = time.perf_counter() + budget
    while len(times) < min_runs or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_batches(budget: float) -> list[tuple[str, float]]:
    """Batches/s over one epoch of the 5,000-digit sample, batch 64."""
    ds = load_mnist_sample()
    x, y = ds.numpy()
    n, bs = len(ds), 64
    nb = -(-n // bs)
    perm = np.random.default_rng(0).permutation(n)

    def epoch(it):
        for xb, _yb in it:
            xb[0, 0, 0, 0]  # touch the batch  # noqa: B018

    def numpy_slices():
        epoch((x[i:i + bs], y[i:i + bs]) for i in range(0, n, bs))

    def numpy_fancy():
        epoch((x[perm[i:i + bs]], y[perm[i:i + bs]]) for i in range(0, n, bs))

    rows = [
        ("numpy slicing x[i:i+64] (views)", numpy_slices),
        ("Dataset.batches(64) in order (views)", lambda: epoch(ds.batches(bs))),
        ("numpy fancy indexing x[perm[i:i+64]]", numpy_fancy),
        ("Dataset.batches(64, shuffle=True)", lambda: epoch(ds.batches(bs, True, seed=0))),
    ]
    return [(name, nb / _best(fn, budget)) for name, fn in rows]


def bench_ipc(budget: float, copies: int) -> list[tuple[str, float, float]]:
    """GB/s of encode and decode for Arrow IPC vs pickle (protocol 5, in-band) of (x, y)."""
    x, y = load_mnist_sample().numpy()
    x = np.concatenate([x] * copies)
    y = np.concatenate([y] * copies)
    ds = from_numpy(x, y)
    gb = (x.nbytes + y.nbytes) / 1e9
    buf = ds.to_ipc()
    blob = pickle.dumps((x, y), protocol=5)
    out = []
    out.append(("Arrow IPC to_ipc / from_ipc(validate=False)",
                gb / _best(ds.to_ipc, budget),
                gb / _best(lambda: Dataset.from_ipc(buf, validate=False).numpy(), budget)))
    out.append(("Arrow IPC from_ipc (NaN/inf scan on)", float("nan"),
                gb / _best(lambda: Dataset.from_ipc(buf).numpy(), budget)))
    out.append(("pickle.dumps / loads of (x, y)",
                gb / _best(lambda: pickle.dumps((x, y), protocol=5), budget),
                gb / _best(lambda: pickle.loads(blob), budget)))
    return out


def make_synthetic(directory: Path, gb: float, encoding: str = "binary",
                   rows_per_group: int = 8192, files: int = 8) -> tuple[int, int]:
    """Write >= ``gb`` GB of float32 rows (784 features, 10 classes) as uncompressed Parquet
    with the given tensor encoding ('binary' or 'list')."""
    import pyarrow.parquet as pq

    row_bytes = ROW_FEATURES * 4 + 8
    total_rows = int(np.ceil(gb * 1e9 / row_bytes))
    per_file = -(-total_rows // files)
    rng = np.random.default_rng(0)
    written = 0
    for f in range(files):
        rows = min(per_file, total_rows - written)
        if rows <= 0:
            break
        writer = None
        for start in range(0, rows, rows_per_group):
            k = min(rows_per_group, rows - start)
            x = rng.random((k, ROW_FEATURES), dtype=np.float32)
            part = parquet_table(from_numpy(x, rng.integers(0, 10, k), num_classes=10),
                                 encoding)
            if writer is None:
                writer = pq.ParquetWriter(directory / f"part-{f:03d}.parquet", part.schema,
                                          compression="none", use_dictionary=["label"])
            writer.write_table(part, row_group_size=rows_per_group)
        writer.close()
        written += rows
    size = sum(p.stat().st_size for p in directory.glob("*.parquet"))
    return written, size


def _peak_rss() -> int:
    """Peak resident set size of this process image in bytes (VmHWM; ru_maxrss would also
    count the parent's memory inherited at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:  # not Linux
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _scan_child(directory: str, batch_size: int, shuffle_buffer: int) -> None:
    """Runs in a subprocess: scan everything, print JSON with rows, time and peak RSS."""
    base = _peak_rss()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    rows = batches = 0
    check = 0.0
    for x, y in Dataset.scan(directory, batch_size, shuffle_buffer=shuffle_buffer, seed=0):
        rows += len(y)
        batches += 1
        check += float(x[0, 0])
    dt = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    peak = _peak_rss()
    print(json.dumps({"rows": rows, "batches": batches, "seconds": dt, "cpu_seconds": cpu,
                      "peak_rss": peak,
                      "rss_after_imports": base}))


def bench_scan(gb: float, encoding: str, configs, keep: str | None) -> list[dict]:
    """Generate the synthetic dataset (unless kept), scan it in subprocesses, delete it."""
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="mao-scan-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        if not list(tmp.glob("*.parquet")):
            make_synthetic(tmp, gb, encoding)
        size = sum(p.stat().st_size for p in tmp.glob("*.parquet"))
        gen = time.perf_counter() - t0
        results = []
        for bs, buf in configs:
            out = subprocess.run([sys.executable, __file__, "--scan-child", str(tmp), str(bs),
                                  str(buf)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update(batch_size=bs, shuffle_buffer=buf, bytes=size, generate_s=gen,
                     encoding=encoding)
            results.append(r)
        return results
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0, help="synthetic Parquet size (GB)")
    ap.add_argument("--quick", action="store_true", help="short timing budgets")
    ap.add_argument("--list-gb", type=float, default=0.5,
                    help="size of the list-encoded comparison dataset (GB)")
    ap.add_argument("--keep", help="reuse/keep the binary synthetic data in this directory")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--scan-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scan_child:
        d, bs, buf = args.scan_child
        _scan_child(d, int(bs), int(buf))
        return
    budget = 0.3 if args.quick else 1.5
    lines = ["## Data layer (benchmarks/data_scan.py)", "",
             f"{os.cpu_count()} CPUs; numpy {np.__version__}; medians are noisy when the "
             "machine is shared.", "",
             "| MNIST sample, batch 64, one epoch | batches/s | vs numpy |", "|---|---:|---:|"]
    rows = bench_batches(budget)
    ref = {0: rows[0][1], 1: rows[0][1], 2: rows[2][1], 3: rows[2][1]}
    for i, (name, rate) in enumerate(rows):
        lines.append(f"| {name} | {rate:,.0f} | {rate / ref[i]:.2f}x |")
    lines += ["", "| 157 MB of float32 images + labels | encode GB/s | decode GB/s |",
              "|---|---:|---:|"]
    for name, enc, dec in bench_ipc(budget, copies=2 if args.quick else 10):
        enc_s = "-" if np.isnan(enc) else f"{enc:.2f}"
        lines.append(f"| {name} | {enc_s} | {dec:.2f} |")
    scan = bench_scan(args.gb, "binary", ((64, 0), (64, 16384), (1024, 0)), args.keep)
    scan += bench_scan(args.list_gb, "list", ((64, 0),), None)
    lines += ["", "| out-of-core scan (784 float32 + label per row) | data | batches/s | GB/s "
              "| GB per CPU-s | peak RSS |", "|---|---:|---:|---:|---:|---:|"]
    for r in scan:
        label = (f"{r['encoding']} tensors, batch {r['batch_size']}, "
                 f"shuffle_buffer {r['shuffle_buffer']}")
        lines.append(f"| {label} | {r['bytes'] / 1e9:.2f} GB | "
                     f"{r['batches'] / r['seconds']:,.0f} | "
                     f"{r['bytes'] / 1e9 / r['seconds']:.2f} | "
                     f"{r['bytes'] / 1e9 / r['cpu_seconds']:.2f} | {r['peak_rss'] / 1e6:.0f} MB |")
    lines.append(f"\n(interpreter + numpy + pyarrow + mao_lab alone: "
                 f"{scan[0]['rss_after_imports'] / 1e6:.0f} MB RSS; writing the "
                 f"{scan[0]['bytes'] / 1e9:.1f} GB took {scan[0]['generate_s']:.0f} s)")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
