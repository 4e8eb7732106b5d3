"""The client side of one data-parallel fit: rounds of SPMD work, shares, faults, edits.

Each round sends every engine one small message (new rows and queue only when the plan
changed, the previous global gradient or averaged weights) and collects one result; the
per-step batches never leave the engines. Runs in the caller's thread (blocking fit) or a
background thread (``block=False``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ..errors import ClusterError
from . import worker
from .balance import Balancer
from .faults import collect
from .plan import Ledger, round_steps
from .sync import weighted_gradient, weighted_weights
from .transport import model_message

log = logging.getLogger(__name__)

_STRUCTURAL = {"edit", "insert", "remove", "replace", "undo", "compile", "build"}


class Coordinator:
    """Runs the rounds of one fit; see ``DataParallel.fit`` for the arguments."""

    def __init__(self, dp: Any, source: Any, epochs: int, seed: int, handle: Any,
                 callbacks: Any, record_batches: bool, checkpoint: Any, start: dict | None):
        self.dp, self.source, self.epochs, self.seed = dp, source, epochs, seed
        self.handle, self.cbs, self.record = handle, callbacks, record_batches
        self.checkpoint, self.start = checkpoint, start
        self.client = dp.cluster.client
        self.model = dp.model
        self.batches: list[np.ndarray] = []  # recorded global batches (record_batches=True)
        self.grad: list[np.ndarray] | None = None  # PS: global gradient engines still apply
        self.weights: list[np.ndarray] | None = None  # local SGD: averaged weights to send
        self.step = 0
        self._edit_pending = False
        self._unobserve = None
        self._warm = 0  # rounds since the engines (re)built the model
        self.devices: dict[int, str] = {}
        self.fresh: set[int] = set()  # engines set up with the current weights
        self._round_ema = 0.0
        self._polled: dict[int, Any] = {}  # engine -> time of the last metrics read live
        self._steps_per_round = dp.initial_mpi_steps

    # ------------------------------------------------------------------ engines
    def _call(self, engines: list[int], fn: Any, args: dict[int, tuple]) -> dict[int, Any]:
        ars = {e: self.client[e].apply_async(fn, *args[e]) for e in engines}
        results, lost = collect(ars, self.client, self.dp.engine_timeout * 3,
                                on_poll=self._poll)
        if lost and (not results or self.mpi):
            raise ClusterError("every engine was lost while setting up: " + "; ".join(
                f"engine {e} {why}" for e, why in lost.items()))
        for e, why in lost.items():  # train on the others
            log.warning("engine %s %s while setting up: training without it", e, why)
            self.handle._event("engine_lost", engine=e, reason=why, reassigned=0)
        return results

    def _setup(self, engines: list[int] | None = None) -> list[int]:
        if engines is None:
            engines = self._requested = self.dp.cluster.ids
        msg = model_message(self.model)
        specs = {}
        for e in engines:
            specs[e] = ({"model": msg, "device": self.dp.device_for(e), "mpi": self.mpi,
                         "n_samples": len(self.source), "engine": e,
                         "slowdown": self.dp.slowdown.get(e, 1.0),
                         "publish_every": self.dp.publish_every},)
        try:
            info = self._call(engines, worker.setup, specs)
        except ClusterError as exc:
            raise ClusterError(f"setting up the model on the engines failed: {exc}") from exc
        engines = [e for e in engines if e in info]
        inv = self.dp.cluster.inventory()
        for e in inv:
            if e.id in info:
                e.device = info[e.id]["device"]
                speeds = info[e.id].get("device_speeds")
                if speeds:
                    e.samples_per_s = speeds.get(e.device)
                    self.handle._event("device_chosen", engine=e.id, device=e.device,
                                       speeds=speeds)
        if self.mpi:  # ranks order the engines so every rank agrees on who is who
            engines = sorted(engines, key=lambda e: info[e]["rank"])
        self.devices.update({e: info[e]["device"] for e in engines})
        return engines

    def _take_in_new_engines(self) -> None:
        """PS: engines that registered since the start join at an epoch boundary."""
        if self.mpi or getattr(self.dp.cluster, "_targets", None) is not None:
            return
        known = set(self._requested)
        new = [e for e in self.dp.cluster.ids if e not in known]
        if not new:
            return
        self._requested = list(self._requested) + new
        try:
            self.dp.cluster.inventory(refresh=True)
        except ClusterError as exc:  # a newcomer with another mao_lab: train without it
            log.warning("new engines not taken in: %s", exc)
            self.handle._event("engine_refused", engines=new, reason=str(exc))
            return
        joined = self._setup(new)
        for e in joined:
            self.balancer.add(e)
            self.ledger.add(e)
            self.fresh.add(e)
            self.handle._event("engine_joined", engine=e, device=self.devices.get(e))

    # ------------------------------------------------------------------ live edits
    def _on_model_event(self, event: dict) -> None:
        if event.get("type") not in _STRUCTURAL:
            return
        self._edit_pending = True
        with self.handle._lock:
            self.handle.edits.append({"type": event["type"], "requested_step": self.step,
                                      "applied_step": None, "time": time.time()})
        self.handle._event("edit_requested", edit=event["type"])

    def _edit_message(self) -> dict | None:
        if not self._edit_pending:
            return None
        self._edit_pending = False
        self.grad = self.weights = None  # the model message carries the current weights
        with self.handle._lock:
            for e in self.handle.edits:
                if e["applied_step"] is None:
                    e["applied_step"] = self.step
        self.handle._event("edit_applied")
        return model_message(self.model)

    # ------------------------------------------------------------------ metrics
    def _poll(self, pending: dict[int, Any]) -> None:
        for e, ar in pending.items():
            data = getattr(ar, "data", None) or {}
            m = data.get("mao_metrics") if isinstance(data, dict) else None
            if m and m.get("time") != self._polled.get(e):  # new since the last look
                self._polled[e] = m.get("time")
                self._engine_metrics(e, m)

    def _engine_metrics(self, e: int, m: dict) -> None:
        b = self.balancer
        m = dict(m)
        if e in b.engines:
            m.update(share=b.share_of(e), speed=b.speeds().get(e))
            inv = self.dp.cluster._inventory or []
            for info in inv:  # the inventory shows the measured throughput for this model
                if info.id == e and m["speed"]:
                    info.samples_per_s = m["speed"]
        with self.handle._lock:
            self.handle.metrics.setdefault(e, {}).update(m)
        self.handle._emit("metrics", {"engine": e, **m})

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        dp, h = self.dp, self.handle
        self.mpi = dp.strategy == "mpi"
        engines = self._setup()
        st = self.start or {}
        policy = st.get("shares") if st.get("shares") and dp.balance == "speed" else dp.balance
        if isinstance(policy, list) and len(policy) != len(engines):
            policy = dp.balance
            if isinstance(policy, list):  # fixed shares of the engines that answered
                policy = [s for e, s in zip(self._requested, policy) if e in engines]
        self.balancer = Balancer(engines, policy, alpha=dp.alpha, drift=dp.drift)
        if st.get("shares") and dp.balance == "speed" and len(st["shares"]) == len(engines):
            self.balancer.policy = "speed"  # continue from the saved shares and speeds
            remap = dict(zip(st.get("engines", []), engines))
            for old, t in (st.get("sec_per_sample") or {}).items():
                e = remap.get(int(old))
                if e is not None:
                    self.balancer.sec_per_sample[e] = float(t)
                    self.balancer.rounds[e] = self.balancer.min_rounds
        self.ledger = Ledger(len(self.source), engines, self.balancer.shares, seed=self.seed,
                             contiguous=self.source.contiguous)
        if st.get("owner") is not None and len(st.get("engines", [])) == len(engines):
            remap = dict(zip(st["engines"], engines))
            self.ledger.owner = np.array([remap.get(int(o), -1) for o in st["owner"]])
        self.step = int(st.get("step", 0))
        h._update(progress={"epochs": self.epochs, "samples_total": len(self.source) * (
            self.epochs - int(st.get("epoch", 0)))})
        self._unobserve = self.model.observe(self._on_model_event) \
            if hasattr(self.model, "observe") else None
        t_start, done_samples = time.perf_counter(), 0
        self.cbs.call("on_train_begin", {
            "epochs": self.epochs, "engines": engines, "samples": len(self.source),
            "steps": -(-len(self.source) // dp.global_batch_size)})
        try:
            for epoch in range(int(st.get("epoch", 0)), self.epochs):
                if h.stop_requested or not self.balancer.engines:
                    break
                self._take_in_new_engines()
                self.cbs.call("on_epoch_begin", epoch, {})
                logs, n = self._epoch(epoch)
                done_samples += n
                elapsed = time.perf_counter() - t_start
                h._update(progress={"epoch": epoch + 1,
                                    "samples_per_s": done_samples / max(elapsed, 1e-9)})
                if logs is None:
                    break
                self.cbs.call("on_epoch_end", epoch, logs)
                with h._lock:
                    for k, v in logs.items():
                        h.history.setdefault(k, []).append(v)
                if self.checkpoint is not None:
                    self.checkpoint(self, epoch)
                h._emit("epoch", {"epoch": epoch, **logs})
                if getattr(self.model, "stop_training", False):
                    break
        finally:
            if self._unobserve:
                self._unobserve()
            self.cbs.call("on_train_end", {})
        return {"batches": self.batches}

    def _epoch(self, epoch: int) -> tuple[dict | None, int]:
        """Rounds until every sample of this epoch was processed once; returns the logs."""
        dp, led, bal, h = self.dp, self.ledger, self.balancer, self.handle
        led.assign_ownership(bal.shares)
        led.start_epoch(epoch)
        dirty = set(led.engines)  # engines whose queue must be (re)sent
        loss_sum = 0.0
        while led.left:
            if h.stop_requested:
                return None, int(led.seen.sum())
            engines = list(led.engines)
            batches = dict(zip(engines, bal.local_batches(dp.global_batch_size)))
            left = led.steps_left(batches)
            if dp.strategy == "mpi":
                steps, mode = round_steps(left, self._steps_per_round), "mpi"
            elif dp.sync_every == 1:
                steps, mode = 1, "grad"
            else:
                steps, mode = min(dp.sync_every, left), "local"
            edit = self._edit_message()
            msgs = self._messages(engines, batches, steps, mode, dirty, edit)
            results, wall = self._round(msgs, edit is not None, dirty)
            n, loss = self._absorb(results, engines, batches, steps, mode, wall)
            if n == 0:
                continue
            loss_sum += loss * n
            self.step += steps
            h._update(progress={"step": self.step, "samples_done": h.progress["samples_done"] + n},
                      shares=dict(zip(bal.engines, bal.shares)))
            if self.cbs.batch_hooks:
                self.cbs.call("on_batch_end", self.step, {"loss": loss, "size": n})
            if bal.rebalance_if_drifted():
                moved = led.rebalance_remaining(bal.shares)
                dirty.update(led.engines)
                h._event("rebalance", shares=dict(zip(bal.engines, bal.shares)), moved=moved)
        seen = led.seen
        logs = {"loss": loss_sum / max(int(seen.sum()), 1), "samples": int(seen.sum()),
                "exactly_once": bool(np.all(seen == 1))}
        h._update(shares=dict(zip(bal.engines, bal.shares)))
        return logs, int(seen.sum())

    def _messages(self, engines: list[int], batches: dict[int, int], steps: int, mode: str,
                  dirty: set[int], edit: dict | None) -> dict[int, dict[str, Any]]:
        """One small message per engine: rows and queue only when the plan changed."""
        led, msgs = self.ledger, {}
        for e in engines:
            m: dict[str, Any] = {"mode": mode, "batch": batches[e], "steps": steps,
                                 "report_weights": e == engines[0]}
            miss = led.missing(e)
            if len(miss):
                m["rows"] = (miss, self.source.payload(miss))
                led.mark_held(e, miss)
            if e in dirty:
                m["queue"] = led.remaining(e).copy()
            if edit is not None:
                m["model"] = edit
            elif e in self.fresh:  # set up with the current weights already
                pass
            elif self.grad is not None:
                m["grad"] = self.grad
            elif self.weights is not None:
                m["weights"] = self.weights
            msgs[e] = m
        dirty.clear()
        self.fresh.clear()
        self.grad = self.weights = None
        return msgs

    def _round(self, msgs: dict[int, dict], rebuilt: bool, dirty: set[int]
               ) -> tuple[dict[int, Any], float]:
        """Send the messages, collect the results; lost engines are dropped (PS)."""
        dp, led = self.dp, self.ledger
        t0 = time.perf_counter()
        ars, gone = {}, {}
        for e, m in msgs.items():
            try:
                ars[e] = self.client[e].apply_async(worker.run, m)
            except IndexError:  # the controller unregistered it before we noticed: lost
                gone[e] = "died (unregistered by the controller)"
        if rebuilt:
            self._warm = 0
        # generous while engines compile kernels (first rounds, after an edit); then the
        # timeout follows the measured round time
        timeout = dp.engine_timeout + 20.0 * self._round_ema + (60.0 if self._warm < 3 else 0)
        self._warm += 1
        results, lost = collect(ars, self.client, timeout, on_poll=self._poll)
        lost = {**gone, **lost}
        wall = time.perf_counter() - t0
        self._round_ema = wall if self._round_ema == 0 else 0.8 * self._round_ema + 0.2 * wall
        if lost:
            why = "; ".join(f"engine {e} {w}" for e, w in lost.items())
            if self.mpi:
                raise ClusterError(f"MPI training stopped: {why}. An MPI communicator cannot "
                                   "lose a rank: restart the cluster and continue with "
                                   "fit(..., resume=<checkpoint dir>).")
            self._lose(lost, dirty)
            if not led.engines:
                raise ClusterError(f"every engine was lost ({why}); the last checkpoint is "
                                   "intact: continue with fit(..., resume=<checkpoint dir>)")
        return results, wall

    def _absorb(self, results: dict[int, Any], engines: list[int], batches: dict[int, int],
                steps: int, mode: str, wall: float) -> tuple[int, float]:
        """Account the samples, update speeds and metrics, and take the global step."""
        led, bal = self.ledger, self.balancer
        done = {}
        for e, r in results.items():
            done[e] = led.commit(e, int(r["n"]))
            bal.record(e, int(r["n"]), float(r["compute"]), steps)
            if not self.mpi:  # PS: the engine waited for the others through the client
                r["metrics"]["wait_s"] = max(0.0, wall - r["compute"] - r["comm"]) / steps
            self._engine_metrics(e, r["metrics"])
        live = {e: r for e, r in results.items() if e in led.engines}
        if not live:
            return 0, 0.0
        if self.record:  # the global batch of each step, as the engines computed it
            order = sorted(live, key=engines.index)
            for s in range(steps):
                self.batches.append(np.concatenate(
                    [done[e][s * batches[e]:(s + 1) * batches[e]] for e in order]))
        if mode == "grad":
            grads, n, loss = weighted_gradient(live)
            self.grad = grads
            self._apply_on_client(grads)
        elif mode == "local":
            ws, n, loss = weighted_weights(live)
            self.weights = ws
            self.model.set_weights(ws)
        else:
            n = sum(int(r["n"]) for r in live.values())
            loss = sum(float(r["loss_sum"]) for r in live.values()) / max(n, 1)
            self._steps_per_round = self._mpi_steps(live, steps)
            first = live.get(engines[0])
            if first is not None and "weights" in first:
                self._sync_client_weights(first["weights"], first.get("opt_state"))
        return n, loss

    # ------------------------------------------------------------------ helpers
    def _apply_on_client(self, grads: list[np.ndarray]) -> None:
        """The client's model is the main copy: apply the same global step to it."""
        if self._edit_pending:  # an edit raced this step: the edit message resends weights
            return
        try:
            self.model.apply_gradients(grads)
        except Exception as exc:  # noqa: BLE001 - the architecture changed under us
            log.warning("global step skipped on the client after a live edit: %s", exc)
            self._edit_pending = True

    def _sync_client_weights(self, weights: list[np.ndarray], opt_state: Any) -> None:
        """MPI: the engines hold the newest weights; rank 0 reports them with its result."""
        if self._edit_pending:
            return
        try:
            self.model.set_weights(weights)
            if opt_state:
                self.model.optimizer.set_state(opt_state)
        except Exception as exc:  # noqa: BLE001 - a live edit changed the shapes meanwhile
            log.warning("weights not copied back after a live edit: %s", exc)
            self._edit_pending = True

    def _mpi_steps(self, live: dict[int, Any], steps: int) -> int:
        """Steps in the next MPI round, so that it lasts about ``round_seconds``.

        Timed by the engines' own step times (a short round at the end of an epoch would
        look slow if the client's round trip were counted in)."""
        per_step = max(float(r["compute"]) + float(r["comm"]) + float(r["wait"])
                       for r in live.values()) / max(steps, 1)
        return int(min(max(1, self.dp.round_seconds / max(per_step, 1e-6)), 512))

    def _lose(self, lost: dict[int, str], dirty: set[int]) -> None:
        for e, why in lost.items():
            self.balancer.remove(e)
            moved = self.ledger.drop(e, self.balancer.shares)
            dirty.update(self.ledger.engines)
            with self.handle._lock:
                self.handle.metrics.setdefault(e, {}).update(lost=why)
            self.handle._event("engine_lost", engine=e, reason=why, reassigned=moved)
            log.warning("engine %s %s: %d samples reassigned", e, why, moved)

