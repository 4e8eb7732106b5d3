"""``mao-lab train CONFIG.json``: headless training from a JSON config, with checkpoints
and resume, in this process or on a local / existing ipyparallel cluster.

Config keys (see docs/cli.md):
    model:    {"zoo": "lenet5"} or {"config": <Sequential.get_config() output>}
    compile:  {"optimizer": "sgd" | {"class_name": ..., "config": {...}}, "loss": ...,
               "metrics": ["accuracy"]}  (zoo models bring their own defaults)
    data:     {"bundled": "mnist" | "iris"} or {"path": "train.parquet",
               "label": "label", "features": ["x"]}; optional "test_fraction" (0.2), "seed"
    fit:      {"epochs": 5, "batch_size": 64, "seed": 0}
    device:   "numpy" | "opencl" | "auto" (single-process runs)
    cluster:  {"engines": 2} (local) or {"profile": "default"} (running ipcluster); omit for
              single-process training
    checkpoint_dir: where every epoch's checkpoint goes (default "runs/<model name>")
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ConfigError, MaoLabError

KNOWN = {"model", "compile", "data", "fit", "device", "cluster", "checkpoint_dir",
         "distributed"}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a training config file; errors name the key that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"train: no such config file: {path}")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"train: {path} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ConfigError(f"train: the config must be a JSON object; received {type(cfg).__name__}")
    unknown = sorted(set(cfg) - KNOWN)
    if unknown:
        raise ConfigError(f"train: unknown config keys {unknown}; expected some of {sorted(KNOWN)}")
    for key in ("model", "data"):
        if key not in cfg:
            raise ConfigError(f"train: the config needs a {key!r} section")
    return cfg


def build_model(cfg: dict[str, Any]):
    """The compiled model of a config's "model" and "compile" sections."""
    from . import zoo
    from .model import Sequential

    spec = cfg["model"]
    if "zoo" in spec:
        model = zoo.get(spec["zoo"])
    elif "config" in spec:
        model = Sequential.from_config(spec["config"])
    else:
        raise ConfigError("train: 'model' needs 'zoo' (a zoo name) or 'config' (a model config)")
    comp = cfg.get("compile")
    if comp:
        model.compile(**comp)
    elif getattr(model, "optimizer", None) is None:
        raise ConfigError("train: the model is not compiled: add a 'compile' section")
    return model


def load_data(spec: dict[str, Any]):
    """(train, test) Datasets of a config's "data" section."""
    from . import data

    if "bundled" in spec:
        loaders = {"mnist": data.load_mnist_sample, "iris": data.load_iris}
        if spec["bundled"] not in loaders:
            raise ConfigError(f"train: data.bundled must be one of {sorted(loaders)}; received "
                              f"{spec['bundled']!r}")
        ds = loaders[spec["bundled"]]()
    elif "path" in spec:
        kw = {k: spec[k] for k in ("label", "features") if k in spec}
        p = str(spec["path"])
        ds = data.read_csv(p, **kw) if p.endswith((".csv", ".csv.gz")) else data.read_parquet(
            p, **kw)
    else:
        raise ConfigError("train: 'data' needs 'bundled' or 'path'")
    frac = float(spec.get("test_fraction", 0.2))
    if not 0 < frac < 1:
        raise ConfigError(f"train: data.test_fraction must be in (0, 1); received {frac}")
    train, test = ds.split([1 - frac, frac], seed=int(spec.get("seed", 0)))
    return train, test


def _single(model, train, test, fit: dict, ckpt: Path, resume: bool, device) -> dict:
    from .io import load_model

    state_file = ckpt / "state.json"
    start, history = 0, {}
    if resume and state_file.is_file():
        state = json.loads(state_file.read_text())
        model = load_model(ckpt / "model.safetensors", device=device)
        start, history = int(state["epoch"]), state.get("history", {})
        print(f"resuming after epoch {start} from {ckpt}")
    elif device:
        model.to(device)
    epochs, seed = int(fit.get("epochs", 1)), int(fit.get("seed", 0))
    bs = int(fit.get("batch_size", 32))
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        h = model.fit(train, epochs=1, batch_size=bs, seed=seed + epoch, verbose=0,
                      validation_data=test)
        for k, v in h.history.items():
            history.setdefault(k, []).extend(v)
        ckpt.mkdir(parents=True, exist_ok=True)
        model.save(ckpt / "model.safetensors")
        state_file.write_text(json.dumps({"epoch": epoch + 1, "history": history}))
        logs = {k: round(v[-1], 4) for k, v in history.items()}
        print(f"epoch {epoch + 1}/{epochs} {time.perf_counter() - t0:.1f}s {logs}", flush=True)
    return {"model": model, "history": history}


def run_config(path, resume: bool = False, profile: str | None = None,
               engines: int | None = None) -> int:
    """Run the training described by the config file at ``path``; returns an exit code."""
    try:
        cfg = load_config(path)
        model = build_model(cfg)
        train, test = load_data(cfg["data"])
        fit = dict(cfg.get("fit", {}))
        ckpt = Path(cfg.get("checkpoint_dir") or f"runs/{model.name or 'model'}")
        cl = dict(cfg.get("cluster") or {})
        if profile:
            cl = {"profile": profile}
        if engines:
            cl = {"engines": engines}
        if cl:
            from .distributed import Cluster, DataParallel

            cluster = (Cluster.connect(profile=cl["profile"]) if "profile" in cl
                       else Cluster.local(n=int(cl.get("engines", 2))))
            with cluster:
                print(cluster.inventory())
                dp = DataParallel(model, cluster, global_batch_size=int(fit.get("batch_size",
                                                                                  64)),
                                  **cfg.get("distributed", {}))
                has_ckpt = (ckpt / "state.json").is_file() or any(ckpt.glob("*"))
                dp.fit(train, epochs=int(fit.get("epochs", 1)), seed=int(fit.get("seed", 0)),
                       verbose=1, checkpoint=str(ckpt),
                       resume=str(ckpt) if resume and has_ckpt else None)
        else:
            out = _single(model, train, test, fit, ckpt, resume, cfg.get("device"))
            model = out["model"]
        res = model.evaluate(test)
        print("test " + " ".join(f"{k}={v:.4f}" for k, v in res.items()))
        print(f"checkpoints in {ckpt}")
        return 0
    except MaoLabError as exc:
        print(f"mao-lab train: {exc}", file=sys.stderr)
        return 2
