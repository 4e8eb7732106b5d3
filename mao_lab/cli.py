"""The ``mao-lab`` command: devices, bench, demo, train, lab.

Every subcommand has ``--help``; bad arguments print a usage message and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import __version__

ROOT = Path(__file__).resolve().parent.parent


def _cmd_devices(args) -> int:
    from . import devices

    inv = devices(calibrated=not args.no_calibrate)
    if args.json:
        print(json.dumps([d.as_dict() for d in inv], indent=2))
    else:
        print(inv)
    return 0


def _bench_dir() -> Path | None:
    for cand in (Path.cwd() / "benchmarks", ROOT / "benchmarks"):
        if (cand / "gemm.py").is_file():
            return cand
    return None


BENCHES = ("gemm", "conv", "train", "distributed", "data_scan", "accuracy")


def _cmd_bench(args) -> int:
    bdir = _bench_dir()
    if bdir is None:
        print("mao-lab bench: the benchmark scripts ship with the source checkout "
              "(benchmarks/); run this command from a checkout of mao_lab", file=sys.stderr)
        return 2
    names = args.which or ["gemm", "train"]
    rc = 0
    for name in names:
        script = bdir / f"{name}.py"
        if not script.is_file():
            print(f"mao-lab bench: no benchmark {name!r}; available: "
                  f"{sorted(p.stem for p in bdir.glob('*.py'))}", file=sys.stderr)
            return 2
        cmd = [sys.executable, str(script)]
        if args.quick:
            cmd.append("--quick")
        if args.json:
            cmd += ["--json", str(Path(args.json).with_suffix(f".{name}.json"))]
        print(f"== {name} ==", flush=True)
        rc |= subprocess.call(cmd)
    return rc


def _cmd_demo(args) -> int:
    from ._demo import run_demo

    return run_demo(engines=args.engines, epochs=args.epochs, device=args.device,
                    single=args.single)


def _cmd_train(args) -> int:
    from ._train import run_config

    return run_config(args.config, resume=args.resume, profile=args.profile,
                      engines=args.engines)


def _cmd_lab(args) -> int:
    nb = ROOT / "notebooks"
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={nb if nb.is_dir() else '.'}",
           "--ip=127.0.0.1"]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    try:
        return subprocess.call(cmd)
    except FileNotFoundError:
        print("mao-lab lab: JupyterLab is not installed; pip install 'mao_lab[lab]'",
              file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mao-lab",
        description="Many as One Lab: train neural networks on any vendor's hardware, "
                    "many machines at once, as one.",
    )
    p.add_argument("--version", action="version", version=f"mao_lab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser("devices", help="the device inventory with calibrated GFLOP/s")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.add_argument("--no-calibrate", action="store_true", help="skip the GEMM calibration")
    d.set_defaults(func=_cmd_devices)

    b = sub.add_parser("bench", help="kernel and training benchmarks (tables with ratios)")
    b.add_argument("which", nargs="*", metavar="NAME",
                   help=f"benchmarks to run (default: gemm train); one of {', '.join(BENCHES)}")
    b.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    b.add_argument("--json", metavar="PATH", help="also write results as JSON next to PATH")
    b.set_defaults(func=_cmd_bench)

    m = sub.add_parser("demo", help="the main job: a local cluster trains LeNet-5 on MNIST")
    m.add_argument("--engines", type=_positive_int, default=2, help="local engines (2)")
    m.add_argument("--epochs", type=_positive_int, default=3, help="training epochs (3)")
    m.add_argument("--device", default=None, help="device for single-process runs")
    m.add_argument("--single", action="store_true", help="train in this process only")
    m.set_defaults(func=_cmd_demo)

    t = sub.add_parser("train", help="headless training from a JSON config")
    t.add_argument("config", help="path of a JSON training config (see docs/cli.md)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--profile", default=None, help="ipyparallel profile of a running cluster")
    t.add_argument("--engines", type=_positive_int, default=None,
                   help="start a local cluster with this many engines")
    t.set_defaults(func=_cmd_train)

    lab = sub.add_parser("lab", help="open JupyterLab on the notebooks")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(func=_cmd_lab)
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        msg = f"expected a positive integer; received {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mao-lab`` command."""
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if os.environ.get("MAO_LAB_CLI_TIMING"):
            print(f"[{time.perf_counter() - t0:.1f} s]", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
