"""The engine side of data-parallel training: one SPMD loop per engine.

Functions here run *on the engines* (called through ipyparallel by reference, so mao_lab
must be importable there). State lives in the module-level ``STATE`` between calls: the
model, the rows this engine holds, its queue of sample indices and its metrics.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np

from .transport import build_model, decode

STATE: dict[str, Any] = {}


def setup(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the model on this engine's device and reset the row store.

    ``spec``: model (``transport.model_message``), device, n_samples, mpi, slowdown (>= 1,
    testing/demo only: the engine sleeps so each step takes ``slowdown`` times as long),
    publish_every (seconds between published metrics), engine (id), threads.
    """
    STATE.clear()
    threads = spec.get("threads")
    if threads:
        try:
            from threadpoolctl import threadpool_limits

            STATE["_limits"] = threadpool_limits(int(threads))
        except ImportError:
            pass
    requested = spec.get("device")
    speeds = None
    if requested == "fastest":
        requested, speeds = fastest_device(spec["model"])
    model = build_model(spec["model"], requested)
    backend = getattr(model, "backend", None)
    device = getattr(getattr(backend, "info", None), "key", None) or spec.get("device") or "numpy"
    STATE.update(
        model=model, device=device, engine=spec.get("engine"),
        slowdown=float(spec.get("slowdown") or 1.0),
        publish_every=float(spec.get("publish_every", 0.5)),
        rows=np.full(int(spec["n_samples"]), -1, dtype=np.int64), x=None, y=None,
        queue=np.zeros(0, np.int64), pos=0, step=0, last_publish=0.0,
        window={"n": 0, "compute": 0.0, "comm": 0.0, "wait": 0.0, "loss": 0.0, "steps": 0},
        sync=None,
    )
    if spec.get("mpi"):
        from .sync import MPIAllreduce

        STATE["sync"] = MPIAllreduce()
    import psutil

    STATE["proc"] = psutil.Process()
    STATE["proc"].cpu_percent(None)
    STATE["host"] = socket.gethostname()
    rank = STATE["sync"].rank if STATE["sync"] is not None else None
    return {"device": device, "pid": os.getpid(), "host": socket.gethostname(), "rank": rank,
            "device_speeds": speeds}


def fastest_device(msg: dict[str, Any], batch: int = 32, steps: int = 3
                   ) -> tuple[str, dict[str, float]]:
    """Time a few training steps of this model on every device of this engine.

    Returns the fastest device key and samples/s per device (0.0 where building failed).
    """
    from ..backends import available_keys

    speeds: dict[str, float] = {}
    rng = np.random.default_rng(0)
    for key in available_keys():
        try:
            model = build_model(msg, key)
            x = rng.random((batch,) + tuple(model.input_shape), dtype=np.float32)
            y = rng.integers(0, max(int(model.output_shape[-1]), 2), batch)
            model.compute_gradients(x, y)  # warm-up: kernels compile here
            t0 = time.perf_counter()
            for _ in range(steps):
                _, g = model.compute_gradients(x, y)
                model.apply_gradients(g)
            speeds[key] = batch * steps / (time.perf_counter() - t0)
        except Exception:  # noqa: BLE001 - a device that cannot run the model is skipped
            speeds[key] = 0.0
    return max(speeds, key=lambda k: (speeds[k], k == "numpy")), speeds


def add_rows(idx: np.ndarray, payload: dict[str, Any]) -> int:
    """Store rows ``idx`` (global indices) sent as ``transport.Source.payload``."""
    x, y = decode(payload)
    if len(x) != len(idx):
        raise ValueError(f"received {len(x)} rows for {len(idx)} indices")
    start = 0 if STATE["x"] is None else len(STATE["x"])
    if STATE["x"] is None:
        STATE["x"], STATE["y"] = np.array(x), np.array(y)
    else:
        STATE["x"] = np.concatenate([STATE["x"], x])
        STATE["y"] = np.concatenate([STATE["y"], y])
    STATE["rows"][np.asarray(idx, np.int64)] = np.arange(start, start + len(idx))
    return len(STATE["x"])


def _batch(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = STATE["rows"][idx]
    if np.any(r < 0):
        missing = idx[r < 0][:5].tolist()
        raise RuntimeError(f"engine {STATE['engine']} does not hold rows {missing}...")
    return STATE["x"][r], STATE["y"][r]


def _compute(idx: np.ndarray) -> tuple[float, list[np.ndarray] | None, float]:
    """Loss and gradients of the mean loss over rows ``idx``; and compute seconds."""
    t0 = time.perf_counter()
    if len(idx) == 0:
        return 0.0, None, 0.0
    x, y = _batch(idx)
    loss, grads = STATE["model"].compute_gradients(x, y)
    grads = [np.asarray(g, dtype=np.float32) for g in grads]
    dt = time.perf_counter() - t0
    if STATE["slowdown"] > 1.0:  # artificial slow device (tests and demos only)
        time.sleep(dt * (STATE["slowdown"] - 1.0))
        dt = time.perf_counter() - t0
    return float(loss), grads, dt


def _zeros_like_grads() -> list[np.ndarray]:
    """Zero gradients (an engine with no sample left this step still joins the allreduce)."""
    shapes = STATE.get("grad_shapes")
    if shapes is None:
        model = STATE["model"]
        layers = {la.name: la for la in model.layers}
        shapes = []
        for full in model.trainable_weight_names():
            lname, pname = full.rsplit("/", 1)
            shapes.append(tuple(layers[lname].params[pname].shape))
        STATE["grad_shapes"] = shapes
    return [np.zeros(s, np.float32) for s in shapes]


def _publish(force: bool = False, final: bool = False) -> dict[str, Any] | None:
    """Publish this engine's windowed metrics at a bounded rate.

    Metrics are only computed when published (at most every ``publish_every`` seconds, or
    ``force``) or at the end of a round (``final``); returns them then, else None.
    """
    now = time.perf_counter()
    due = force or now - STATE["last_publish"] >= STATE["publish_every"]
    if not (due or final):
        return None
    w = STATE["window"]
    if due or "rss" not in STATE:  # psutil measures CPU since its last call: reading it
        # on every round-end would leave intervals too short to see any CPU time; and
        # every psutil call costs a system call, so they run at the publication rate only
        proc = STATE["proc"]
        STATE["cpu_percent"] = proc.cpu_percent(None)
        STATE["rss"], STATE["mem_percent"] = proc.memory_info().rss, proc.memory_percent()
    m = {
        "engine": STATE["engine"], "device": STATE["device"], "step": STATE["step"],
        "local_batch": STATE.get("batch", 0), "samples": w["n"],
        "samples_per_s": (w["n"] / w["compute"]) if w["compute"] > 0 else None,
        "compute_s": w["compute"] / max(w["steps"], 1), "comm_s": w["comm"] / max(w["steps"], 1),
        "wait_s": w["wait"] / max(w["steps"], 1),
        "loss": (w["loss"] / w["n"]) if w["n"] else None,
        "cpu_percent": STATE.get("cpu_percent", 0.0), "rss": STATE["rss"],
        "mem_percent": STATE["mem_percent"], "host": STATE["host"], "time": time.time(),
    }
    if w["n"] == 0 and "last_metrics" in STATE:  # an empty window: repeat the last figures
        m = dict(STATE["last_metrics"], cpu_percent=m["cpu_percent"], rss=m["rss"],
                 time=m["time"], step=m["step"])
    STATE["last_metrics"] = m
    if due:
        try:
            from ipyparallel.engine.datapub import publish_data

            publish_data({"mao_metrics": m})
        except Exception:  # noqa: BLE001 - not inside an engine (unit use): skip
            pass
        STATE["last_publish"] = now
        STATE["window"] = {"n": 0, "compute": 0.0, "comm": 0.0, "wait": 0.0, "loss": 0.0,
                           "steps": 0}
    return m


def _account(n: int, loss: float, compute: float, comm: float = 0.0, wait: float = 0.0) -> None:
    w = STATE["window"]
    w["n"] += n
    w["compute"] += compute
    w["comm"] += comm
    w["wait"] += wait
    w["loss"] += loss * n
    w["steps"] += 1
    STATE["step"] += 1


def run(msg: dict[str, Any]) -> dict[str, Any]:
    """One round of training on this engine.

    ``msg`` keys: model (rebuild from a message: a live edit), weights (set them: local-SGD
    averaging), grad (apply this global gradient first: parameter server, sync_every=1),
    rows ((idx, payload) to store), queue (new queue of sample indices), batch (local batch
    size), steps, mode ("grad" | "local" | "mpi" | "apply").

    Returns n (samples processed), loss_sum, compute (seconds), comm, wait, and grad_sum
    (mode "grad") or weights (mode "local"), plus this engine's latest metrics.
    """
    model = STATE["model"]
    if msg.get("model") is not None:
        model = STATE["model"] = build_model(msg["model"], STATE["device"])
        STATE.pop("grad_shapes", None)
    if msg.get("weights") is not None:
        model.set_weights(msg["weights"])
    if msg.get("grad") is not None:
        model.apply_gradients(msg["grad"])
    if msg.get("rows") is not None:
        add_rows(*msg["rows"])
    if msg.get("queue") is not None:
        STATE["queue"], STATE["pos"] = np.asarray(msg["queue"], np.int64), 0
    mode = msg.get("mode", "grad")
    out: dict[str, Any] = {"n": 0, "loss_sum": 0.0, "compute": 0.0, "comm": 0.0, "wait": 0.0}
    if mode == "apply":
        return out
    b = STATE["batch"] = int(msg["batch"])
    if mode == "mpi":  # ranks got this round's message at about the same time
        STATE["sync"].mark_start()
    for _ in range(int(msg.get("steps", 1))):
        idx = STATE["queue"][STATE["pos"]:STATE["pos"] + b]
        STATE["pos"] += len(idx)
        loss, grads, dt = _compute(idx)
        n = len(idx)
        comm = wait = 0.0
        if mode == "mpi":
            local = grads if grads is not None else _zeros_like_grads()
            summed, total, loss_g, wait, comm = STATE["sync"].reduce(local, n, loss)
            if total > 0:  # the sum of n_i g_i, divided by the global batch while applied
                model._apply_flat_gradients(summed, 1.0 / total)
        elif mode == "local" and grads is not None:
            t0 = time.perf_counter()
            model.apply_gradients(grads)
            dt += time.perf_counter() - t0
        elif mode == "grad":
            out["grad_sum"] = ([g * np.float32(n) for g in grads] if grads is not None
                               else _zeros_like_grads())
        out["n"] += n
        out["loss_sum"] += loss * n
        out["compute"] += dt
        out["comm"] += comm
        out["wait"] += wait
        _account(n, loss, dt, comm, wait)
        _publish()
    if mode == "local" or (mode == "mpi" and msg.get("report_weights")):
        out["weights"] = [np.asarray(w) for w in model.get_weights()]
    if mode == "mpi" and msg.get("report_weights"):
        out["opt_state"] = optimizer_state()
    out["metrics"] = _publish(final=True)
    return out


def calibrate(batch: int, seconds: float = 1.0) -> float:
    """Samples/s of this engine training alone (local steps on rows it holds, no sync).

    Changes this engine's model weights: call ``setup`` again before real training.
    """
    held = np.flatnonzero(STATE["rows"] >= 0)
    if len(held) == 0:
        raise RuntimeError(f"engine {STATE['engine']} holds no rows to calibrate on")
    rng = np.random.default_rng(0)
    model, done, t0 = STATE["model"], 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or done == 0:
        idx = rng.choice(held, size=min(batch, len(held)), replace=False)
        _, grads, _ = _compute(idx)
        model.apply_gradients(grads)
        done += len(idx)
    return done / (time.perf_counter() - t0)


def weights() -> list[np.ndarray]:
    """This engine's current model weights (host arrays)."""
    return [np.asarray(w) for w in STATE["model"].get_weights()]


def optimizer_state() -> list[np.ndarray]:
    """This engine's optimizer state (host arrays, ``Optimizer.get_state`` order)."""
    return [np.asarray(a) for a in STATE["model"].optimizer.get_state()]


def teardown() -> None:
    """Drop the model and the rows held by this engine."""
    STATE.clear()
