"""Test accuracy of the whole zoo on the bundled data, beside PyTorch and LeCun et al. (1998).

MNIST models: seeded stratified 4,000/1,000 split of the bundled 5,000-digit sample, batch
64, the zoo's SGD (lr 0.01, momentum 0.9), 10 epochs (--quick: 2). PyTorch trains a twin
with the same initial weights (copied), optimizer, batch size and epochs. Iris: 120/30
split, the seed's configuration (lr 0.01, batch 4, 100 epochs) and lr 0.5. LeCun's figures
are test errors on the full 60,000/10,000 MNIST (no distortions, except boosted LeNet-4).
Usage: python benchmarks/accuracy.py [--quick] [--epochs N] [--models ...] [--json FILE]
[--markdown FILE] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _common import emit  # noqa: E402 - benchmarks/ is on sys.path when run

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# LeCun, Bottou, Bengio, Haffner (1998), Proc. IEEE 86(11), Fig. 9: test error (%) on MNIST
LECUN = {"fc300": 4.7, "fc1000": 4.5, "fc300_100": 3.05, "lenet1": 1.7, "lenet4": 1.1,
         "lenet5": 0.95, "boosted_lenet4": 0.7}


def _torch_accuracy(model, x, y, xt, yt, epochs, batch, seed=0) -> float:
    from _torch_zoo import TorchTrainer

    opt = model.optimizer
    tt = TorchTrainer(model, x, y, opt.learning_rate, getattr(opt, "momentum", 0.0), seed)
    for _ in range(epochs):
        tt.epoch(batch)
    return tt.accuracy(xt, yt)


def run_iris(lr: float) -> dict:
    from mao_lab import zoo
    from mao_lab.data import load_iris

    tr, te = load_iris().split([0.8, 0.2], seed=0, stratify=True)
    (x, y), (xt, yt) = tr.numpy(), te.numpy()
    model = zoo.get("iris", learning_rate=lr, seed=0)
    ref = _torch_accuracy(model, x, y, xt, yt, 100, 4)  # twin copies the initial weights
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=4, epochs=100, seed=0, verbose=0)
    dt = time.perf_counter() - t0
    return {"model": f"iris (lr {lr})", "params": model.count_params(), "epochs": 100,
            "ours": model.evaluate(xt, yt)["accuracy"], "pytorch": ref, "seconds": dt}


def run_mnist(name: str, epochs: int, data) -> dict:
    from mao_lab import zoo

    (x, y), (xt, yt) = data
    model = zoo.get(name, seed=0)
    row = {"model": name, "params": model.count_params(), "epochs": epochs,
           "lecun_error": LECUN.get(name)}
    t0 = time.perf_counter()
    if name == "boosted_lenet4":
        model.fit(x, y, batch_size=64, epochs=epochs)
        res = model.evaluate(xt, yt)
        row.update(ours=res["accuracy"], pytorch=None, members=[
            res[f"accuracy_{k}"] for k in (1, 2, 3)], set_sizes=model.set_sizes)
    else:
        ref = _torch_accuracy(model, x, y, xt, yt, epochs, 64)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=epochs, seed=0, verbose=0)
        row.update(ours=model.evaluate(xt, yt)["accuracy"], pytorch=ref)
    row["seconds"] = time.perf_counter() - t0
    return row


def report(rows: list[dict], epochs: int) -> str:
    out = [f"Test accuracy (%), MNIST models after {epochs} epochs on 4,000 digits, tested on "
           "1,000; LeCun et al. (1998) on the full 60,000/10,000 MNIST.", "",
           "| model | params | mao_lab (numpy) | PyTorch, same init and budget | LeCun 1998 "
           "full MNIST | mao_lab train time |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = "—" if r.get("pytorch") is None else f"{100 * r['pytorch']:.1f}"
        lecun = "—" if r.get("lecun_error") is None else f"{100 - r['lecun_error']:.2f}"
        ours = f"{100 * r['ours']:.1f}"
        if "members" in r:
            ours += " (nets alone: " + ", ".join(f"{100 * a:.1f}" for a in r["members"]) + ")"
        out.append(f"| {r['model']} | {r['params']:,} | {ours} | {ref} | {lecun} | "
                   f"{r['seconds']:.1f} s |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    from mao_lab import zoo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 epochs instead of 10")
    ap.add_argument("--epochs", type=int, help="epochs for the MNIST models")
    ap.add_argument("--models", default=",".join(zoo.names()), help="comma-separated names")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / PyTorch threads")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    args = ap.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    from mao_lab.data import load_mnist_sample

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    epochs = args.epochs or (2 if args.quick else 10)
    tr, te = load_mnist_sample().split([0.8, 0.2], seed=0, stratify=True)
    data = (tr.numpy(), te.numpy())
    rows = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name in args.models.split(","):
            if name == "iris":
                new = [run_iris(0.01), run_iris(0.5)]
            else:
                new = [run_mnist(name, epochs, data)]
            for r in new:
                print(f"  {r['model']}: ours {r['ours']:.4f} pytorch {r.get('pytorch')} "
                      f"({r['seconds']:.1f} s)", file=sys.stderr, flush=True)
            rows += new
    text = report(rows, epochs)
    return emit(text, rows, args.json, args.markdown)


if __name__ == "__main__":
    sys.exit(main())
