"""Distributed benchmark: scaling, heterogeneous shares and sync overhead on real local clusters.

1. Scaling: LeNet-5 on the MNIST sample, one process vs 1 engine vs 2 engines (1 BLAS
   thread each, checked on the engines), MPI allreduce and parameter server (sync_every 1,
   4, 16); measured interleaved, several times; medians, and ratios to 1 engine with the
   same strategy and sync_every.
2. Heterogeneity by CPU affinity: three MPI engines, one alone on core 0 and two sharing
   core 1; balance="speed" vs "equal"; efficiency = cluster throughput / sum of each
   engine's standalone throughput under the same pinning (all three measured at once).
   Plus a numpy-backend engine paired with an OpenCL-backend engine, when OpenCL works.
3. Sync overhead per step, MPI vs PS, for the iris net, FC-300 and LeNet-5.

Throughputs are measured over the epochs after the first (setup excluded). Usage:
    python benchmarks/distributed.py [--quick] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("POCL_AFFINITY", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mao_lab import zoo  # noqa: E402
from mao_lab.callbacks import Callback  # noqa: E402
from mao_lab.data import load_mnist_sample  # noqa: E402
from mao_lab.distributed import Cluster, DataParallel, worker  # noqa: E402
from mao_lab.distributed.transport import model_message  # noqa: E402


class EpochClock(Callback):
    """Times the end of every epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter())


def steady_rate(clock: EpochClock, samples_per_epoch: int, skip: int = 1) -> float:
    """Samples/s over the epochs after the first ``skip`` (setup, warm-up, share search)."""
    t = clock.times
    return samples_per_epoch * (len(t) - 1 - skip) / (t[-1] - t[skip])


def single_process(build, x, y, batch: int, epochs: int) -> float:
    from threadpoolctl import threadpool_limits

    model, clock = build(), EpochClock()
    with threadpool_limits(1):
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[clock], seed=0)
    return steady_rate(clock, len(x))


def cluster_rate(build, cluster, x, y, batch: int, epochs: int, skip: int = 1,
                 **kw) -> tuple[float, dict]:
    clock = EpochClock()
    dp = DataParallel(build(), cluster, global_batch_size=batch, **kw)
    hist = dp.fit(x, y, epochs=epochs, callbacks=[clock], seed=0)
    assert all(hist.history["exactly_once"]), hist.history
    return steady_rate(clock, len(x), skip), dp.handle.snapshot()


def _pin_process(core: int) -> int:
    """Engine side: pin every thread of this process to ``core``."""
    import os

    tids = [int(t) for t in os.listdir("/proc/self/task")]
    for tid in tids:
        os.sched_setaffinity(tid, {core})
    return len(tids)


def pin(cluster, cores: dict[int, int]) -> None:
    for e, core in cores.items():
        cluster.client[e].apply_sync(_pin_process, core)


def standalone(cluster, build, x, y, batch: int, seconds: float,
               slowdown: dict[int, float] | None = None) -> dict[int, float]:
    """Each engine trains alone, all at the same time (same contention as together)."""
    msg = model_message(build())
    n = len(x)
    for e in cluster.ids:
        cluster.client[e].apply_sync(worker.setup, {
            "model": msg, "n_samples": n, "engine": e, "slowdown": (slowdown or {}).get(e)})
        idx = np.arange(n)
        cluster.client[e].apply_sync(worker.add_rows, idx, {"x": x, "y": y})
    ars = {e: cluster.client[e].apply_async(worker.calibrate, batch, seconds)
           for e in cluster.ids}
    return {e: ar.get() for e, ar in ars.items()}


def table(title: str, head: list[str], rows: list[list[str]]) -> str:
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = "| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(head)) + " |"
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    body = ["| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |" for r in rows]
    return "\n".join([f"### {title}", "", line, sep] + body + [""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--only", choices=("all", "scaling", "hetero"), default="all",
                    help="run one part: scaling (+ sync overhead, OpenCL pair) or hetero")
    args = ap.parse_args()
    n, epochs, gbs, reps = (1024, 3, 64, 3) if args.quick else (2048, 4, 64, 5)
    x, y = load_mnist_sample().split([n / 5000, 1 - n / 5000], seed=0)[0].numpy()
    x, y = x[:n], y[:n]
    out = []
    if args.only in ("all", "scaling"):
        out += scaling(x, y, n, epochs, gbs, reps)
    if args.only in ("all", "hetero"):
        out += hetero(x, y, epochs, gbs, 2.0 if args.quick else 4.0, 2 if args.quick else 3)
    text = "\n".join(out)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(text)


def lenet():
    return zoo.lenet5(seed=0)


def blas_threads(cluster) -> list[int]:
    """OpenBLAS/OpenMP threads each engine really runs with (threadpoolctl, on the engine)."""
    def probe():
        import numpy  # noqa: F401 - load OpenBLAS first, so it is in the report
        from threadpoolctl import threadpool_info

        return max((d["num_threads"] for d in threadpool_info()), default=1)
    return cluster.client[cluster.ids].apply_sync(probe)


def scaling(x, y, n: int, epochs: int, gbs: int, reps: int) -> list[str]:
    """Tables 1 and 3 (and the numpy + OpenCL pair).

    One process, 1 engine and 2 engines are measured ``reps`` times interleaved (A, B, C,
    A, B, C...) so that the drift of a shared machine cancels out; medians are reported,
    and the 2-engine ratios are medians of the ratios of neighbouring runs.
    """
    out = []
    runs: dict[str, list[float]] = {}

    def add(name: str, rate: float) -> None:
        runs.setdefault(name, []).append(rate)

    with Cluster.local(n=1, mpi=True) as m1, Cluster.local(n=2, mpi=True) as m2, \
            Cluster.local(n=2) as ps:
        threads = blas_threads(m1) + blas_threads(m2) + blas_threads(ps)
        for _ in range(reps):
            add("one process (1 thread)", single_process(lenet, x, y, gbs, epochs))
            add("1 engine, MPI", cluster_rate(lenet, m1, x, y, gbs, epochs)[0])
            add("2 engines, MPI", cluster_rate(lenet, m2, x, y, gbs, epochs,
                                               balance="equal")[0])
            for k in (1, 4, 16):
                add(f"1 engine, PS sync_every={k}", cluster_rate(
                    lenet, ps.subset(ps.ids[:1]), x, y, gbs, epochs, strategy="ps",
                    sync_every=k)[0])
                add(f"2 engines, PS sync_every={k}", cluster_rate(
                    lenet, ps, x, y, gbs, epochs, strategy="ps", sync_every=k,
                    balance="equal")[0])
        sync_rows = _sync_overhead(ps, m2, x, y, n)
        ocl = _opencl_pair(ps, ps.ids, x, y, gbs, epochs)
    med = {k: float(np.median(v)) for k, v in runs.items()}
    base = med["one process (1 thread)"]
    rows = []
    for name, v in med.items():
        one = runs.get("1 engine, " + name.split(", ", 1)[-1])  # same strategy, sync_every
        pair = [b / a for a, b in zip(one, runs[name])] if one else None
        rows.append([name, f"{v:.0f}", f"{v / base:.2f}",
                     f"{np.median(pair):.2f}" if pair else "-"])
    out.append(table(f"Scaling: LeNet-5, {n} MNIST digits, global batch {gbs}, samples/s "
                     f"(median of {reps} interleaved runs; engines' BLAS threads: "
                     f"{sorted(set(threads))})",
                     ["configuration", "samples/s", "vs one process", "vs 1 engine"], rows))
    if ocl:
        out.append(table("numpy engine + OpenCL engine (LeNet-5, PS)",
                         ["configuration", "samples/s", "shares"], ocl))
    out.append(table("Sync overhead per step (2 engines, 1 sample each)",
                     ["model", "params", "strategy", "ms per step"], sync_rows))
    return out


def _sync_overhead(ps, mpi, x, y, n: int) -> list[list[str]]:
    """Per-step cost of a PS round and of an MPI allreduce, 1 sample per engine."""
    rows, tiny = [], 2
    models = (("iris 4-30-20-3", lambda: zoo.iris(seed=0), None, None),
              ("FC-300", lambda: zoo.fc300(seed=0), None, None),
              ("LeNet-5", lenet, x, y))
    for strategy, cluster in (("PS", ps), ("MPI", mpi)):
        for name, build, xs, ys in models:
            if xs is None:
                xs, ys = _inputs_for(build(), n)
            r, snap = cluster_rate(build, cluster, xs[:256], ys[:256], tiny, 2,
                                   strategy=strategy.lower(), balance="equal")
            if strategy == "PS":
                comp = max(m["compute_s"] for m in snap["metrics"].values())
                ms = (tiny / r - comp) * 1e3
            else:
                ms = np.mean([m["comm_s"] for m in snap["metrics"].values()]) * 1e3
            rows.append([name, f"{build().count_params():,}", strategy, f"{ms:.2f}"])
    return rows


def hetero(x, y, epochs: int, gbs: int, seconds: float, reps: int) -> list[str]:
    """Table 2: three MPI engines made unequal by CPU pinning, then by ``slowdown``.

    ``reps`` times: the standalone speeds (all engines at once), then equal and speed
    shares; efficiency is each run's throughput over the standalone sum of the same
    repetition, and the table gives medians (a shared machine drifts between runs).
    """
    out = []
    with Cluster.local(n=3, mpi=True) as c3:
        ranks = {e.id: e.mpi_rank for e in c3.inventory()}
        order = sorted(c3.ids, key=lambda e: ranks[e])
        for title, cores, slow in (
                ("pinned to cores 0, 1, 1", {order[0]: 0, order[1]: 1, order[2]: 1}, None),
                ("unpinned, slowdown 1, 2, 2 (simulated)", {e: None for e in order},
                 {order[1]: 2.0, order[2]: 2.0})):
            if any(c is not None for c in cores.values()):
                pin(c3, cores)
            else:
                for e in order:
                    c3.client[e].apply_sync(_unpin)
            alone, runs = [], {"equal": [], "speed": []}
            for _ in range(reps):
                speeds = standalone(c3, lenet, x, y, gbs // 2, seconds, slow)
                alone.append([speeds[e] for e in order])
                for bal in runs:
                    r, snap = cluster_rate(lenet, c3, x, y, gbs * 3 // 2, epochs + 2, skip=2,
                                           balance=bal, slowdown=slow)
                    runs[bal].append((r, r / sum(speeds.values()),
                                      [snap["shares"][e] for e in order]))
            a = np.median(np.array(alone), axis=0)
            het = [["standalone sum (same setting, all at once)", f"{a.sum():.0f}", "1.00",
                    " : ".join(f"{v / a.max():.2f}" for v in a)]]
            for bal, rs in runs.items():
                shares = np.median(np.array([r[2] for r in rs]), axis=0)
                het.append([f"balance={bal!r}", f"{np.median([r[0] for r in rs]):.0f}",
                            f"{np.median([r[1] for r in rs]):.2f}",
                            " : ".join(f"{v:.2f}" for v in shares)])
            out.append(table(f"Heterogeneity: 3 MPI engines, {title} (LeNet-5; medians of "
                             f"{reps})", ["configuration", "samples/s", "efficiency",
                                          "speeds / shares"], het))
    return out


def _unpin() -> None:
    import os

    for t in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(t), set(range(os.cpu_count() or 1)))


def _inputs_for(model, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((n,) + tuple(model.input_shape), dtype=np.float32)
    return x, rng.integers(0, model.output_shape[-1], n)


def _opencl_pair(ps, ids, x, y, gbs, epochs) -> list[list[str]]:
    """One engine on numpy, one on OpenCL: speed shares vs equal shares."""
    rows = []
    try:
        dev = {ids[0]: "numpy", ids[1]: "opencl"}
        for bal in ("equal", "speed"):
            r, snap = cluster_rate(lambda: zoo.lenet5(seed=0), ps, x, y, gbs, epochs,
                                   strategy="ps", balance=bal, device=dev)
            rows.append([f"balance={bal!r}", f"{r:.0f}",
                         " : ".join(f"{snap['shares'][e]:.2f}" for e in ids)])
    except Exception as exc:  # noqa: BLE001 - OpenCL is optional on the engines
        rows.append([f"skipped: {type(exc).__name__}: {str(exc)[:80]}", "-", "-"])
    return rows


if __name__ == "__main__":
    main()
