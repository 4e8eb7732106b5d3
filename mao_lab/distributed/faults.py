"""Engine loss: collect a round's results, telling dead or hung engines from failing code.

An engine is *lost* when ipyparallel reports it died (SIGKILL, crash, missed heartbeats of a
SIGSTOPped process), when it unregisters, or when it does not answer within the round's
timeout. An engine whose *code* raised is not lost: that error is re-raised with its id.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as wait_futures
from typing import Any

from ..errors import ClusterError


def is_engine_death(exc: BaseException) -> bool:
    """True when ``exc`` says the engine process died (not that the code failed)."""
    name = type(exc).__name__
    ename = getattr(exc, "ename", "") or ""
    text = str(exc)
    return (name in ("EngineError", "DeadEngine") or ename in ("EngineError",)
            or "died while running task" in text or "Engine has been unregistered" in text)


def remote_error(eid: int, exc: BaseException) -> ClusterError:
    """A ClusterError naming the engine, carrying the remote traceback."""
    tb = getattr(exc, "traceback", None) or ""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    err = ClusterError(f"engine {eid} failed: {ename}: {evalue}" + (f"\n{tb}" if tb else ""))
    err.engine = eid  # type: ignore[attr-defined]
    return err


def collect(ars: dict[int, Any], client: Any, timeout: float,
            on_poll: Callable[[dict[int, Any]], None] | None = None,
            poll: float = 0.1) -> tuple[dict[int, Any], dict[int, str]]:
    """Wait for one AsyncResult per engine; returns (results, lost engines with a reason).

    Args:
        ars: engine id -> AsyncResult of this round.
        client: the ipyparallel Client (to see engines unregister).
        timeout: seconds after which an engine that has not answered counts as hung.
        on_poll: called with the still-pending AsyncResults while waiting (live metrics).
        poll: seconds between checks for lost engines and live metrics. A result wakes
            the wait at once, so this only sets how often an idle client looks around:
            a busy-polling client steals a core from the engines it waits for.
    Raises:
        ClusterError: an engine's code raised (names the engine, with the traceback).
    """
    results: dict[int, Any] = {}
    lost: dict[int, str] = {}
    pending = dict(ars)
    deadline = time.monotonic() + timeout
    while pending:
        for eid, ar in list(pending.items()):
            if not ar.ready():
                continue
            del pending[eid]
            try:
                results[eid] = ar.get(0)
            except Exception as exc:  # noqa: BLE001 - sorted into lost vs failed below
                if is_engine_death(exc):
                    lost[eid] = f"died ({getattr(exc, 'evalue', exc)})"
                else:
                    raise remote_error(eid, exc) from None
        if not pending:
            break
        alive = set(client.ids)
        for eid in [e for e in pending if e not in alive]:
            lost[eid] = "unregistered (missed heartbeats or exited)"
            del pending[eid]
        if time.monotonic() > deadline:
            for eid in list(pending):
                lost[eid] = f"did not answer within {timeout:.1f} s (hung or stopped)"
                del pending[eid]
            break
        if on_poll is not None:
            on_poll(pending)
        waiting = list(pending.values())
        if all(isinstance(a, Future) for a in waiting):  # ipyparallel's AsyncResults are
            wait_futures(waiting, timeout=poll, return_when=FIRST_COMPLETED)
        else:
            waiting[0].wait(poll)
    return results, lost


def kill_engine(cluster: Any, eid: int, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to engine ``eid``'s process (same host only); returns its pid.

    For tests and demos of fault tolerance: SIGKILL (dies), SIGSTOP (hangs), SIGCONT.
    """
    info = cluster.engine(eid)
    if not cluster.is_local(eid):
        raise ClusterError(f"engine {eid} runs on host {info.host}, not here: cannot signal "
                           f"pid {info.pid}")
    os.kill(info.pid, sig)
    return info.pid
