"""``mao-lab demo``: the main job. A local 2-engine cluster trains LeNet-5 on the bundled
MNIST sample with speed-proportional shares and progress bars, then prints test accuracy,
throughput per engine and cluster efficiency (``--single`` trains in this process)."""

from __future__ import annotations

import time


def _banner(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


def _model(zoo_name: str = "lenet5"):
    from . import zoo

    return zoo.get(zoo_name)


def _have_mpi() -> bool:
    """True when mpi4py and an MPI launcher are installed (the 'mpi' extra)."""
    import importlib.util
    import shutil
    import sys
    from pathlib import Path

    if importlib.util.find_spec("mpi4py") is None:
        return False
    return bool(shutil.which("mpiexec") or (Path(sys.executable).parent / "mpiexec").exists())


def run_demo(engines: int = 2, epochs: int = 3, device: str | None = None,
             single: bool = False, zoo_name: str = "lenet5", batch_size: int = 64) -> int:
    """Run the demo; returns the process exit code."""
    from . import __version__, devices
    from .data import load_mnist_sample

    print(f"mao_lab {__version__} — Many as One Lab")
    _banner("devices (calibrated float32 GEMM)")
    print(devices(calibrated=True))

    train, test = load_mnist_sample().split([0.8, 0.2], seed=0, stratify=True)
    model = _model(zoo_name)
    _banner(f"model {model.name}: {model.count_params():,} parameters")
    model.summary()
    print(f"data: {len(train)} training / {len(test)} test digits (seeded stratified split)")

    if single:
        from .backends import get_backend

        be = get_backend(device or "auto")
        model.to(be)
        _banner(f"training in this process on {be.key} ({be.info.name})")
        t0 = time.perf_counter()
        model.fit(train, epochs=epochs, batch_size=batch_size, seed=0, verbose=1)
        dt = time.perf_counter() - t0
        res = model.evaluate(test)
        _banner("result")
        print(f"test accuracy {res.get('accuracy', float('nan')):.4f}   test loss "
              f"{res['loss']:.4f}")
        print(f"throughput {epochs * len(train) / dt:,.0f} samples/s on {be.key}")
        return 0

    from .distributed import Cluster, DataParallel

    mpi = _have_mpi()
    _banner(f"starting a local cluster of {engines} engines"
            + (" (MPI: gradients allreduced every step)" if mpi else
               " (parameter server through this process)"))
    with Cluster.local(n=engines, mpi=mpi) as cluster:
        print(cluster.inventory())
        dp = DataParallel(model, cluster, balance="speed", global_batch_size=batch_size,
                          device=device)
        _banner(f"training on {engines} engines, speed-proportional shares of a global "
                f"batch of {batch_size}")
        t0 = time.perf_counter()
        history = dp.fit(train, epochs=epochs, seed=0, verbose=1)
        dt = time.perf_counter() - t0
        snap = dp.handle.snapshot()
    res = model.evaluate(test)
    total = epochs * len(train)
    _banner("result")
    print(f"test accuracy {res.get('accuracy', float('nan')):.4f}   test loss {res['loss']:.4f}"
          f"   (train loss by epoch: {[round(v, 4) for v in history.history.get('loss', [])]})")
    print(f"cluster throughput {total / dt:,.0f} samples/s ({total:,} samples in {dt:.1f} s)")
    print(f"{'engine':>6}  {'device':<12} {'share':>6} {'samples/s':>10} {'compute':>8} "
          f"{'comm':>7} {'wait':>7}")
    solo = 0.0
    for eid, m in sorted(snap["metrics"].items()):
        sps = m.get("samples_per_s") or 0.0
        comp = m.get("compute_s") or 0.0
        lb = m.get("local_batch") or 0
        if comp > 0 and lb:
            solo += lb / comp  # what this engine computes per second of pure compute
        print(f"{eid:>6}  {str(m.get('device', '?')):<12} {snap['shares'].get(eid, 0):>6.2f} "
              f"{sps:>10,.0f} {comp * 1e3:>7.1f}ms {(m.get('comm_s') or 0) * 1e3:>6.1f}ms "
              f"{(m.get('wait_s') or 0) * 1e3:>6.1f}ms")
    if solo > 0:
        print(f"cluster efficiency {total / dt / solo:.0%} (throughput / sum of the engines' "
              "compute-only speeds)")
    return 0
