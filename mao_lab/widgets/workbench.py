"""Workbench: the model graph (with its editor and inspector), the training dashboard and the
engine monitor in one layout, with a ``fit`` that wires them to the run.

Works without a cluster: a single-process fit feeds the monitor one "local" engine row.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import ipywidgets as ipw

from ..callbacks import Callback
from ._static import add_html, curves_svg, engines_table, graph_svg
from .dashboard import TrainingDashboard
from .graph import ModelGraph
from .monitor import EngineMonitor


class LocalEngineFeed(Callback):
    """Reports this process as engine 0 to an EngineMonitor during a single-process fit."""

    def __init__(self, monitor: EngineMonitor) -> None:
        import psutil

        self.monitor = monitor
        self.proc = psutil.Process(os.getpid())
        self.proc.cpu_percent(None)  # the first call only starts the measurement
        self.mem_total = psutil.virtual_memory().total
        self._t = 0.0

    def _report(self, status: str, **extra: Any) -> None:
        model = getattr(self, "model", None)
        device = getattr(getattr(model, "backend", None), "key", "numpy")
        self.monitor.update([{
            "id": 0, "host": socket.gethostname(), "device": str(device), "status": status,
            "cpu_percent": self.proc.cpu_percent(None), "rss": self.proc.memory_info().rss,
            "mem_total": self.mem_total, "share": 1.0, **extra,
        }])  # fmt: skip

    def on_train_begin(self, logs=None):
        self._report("training")

    def on_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_batch_end(self, batch, logs=None):
        dt = time.perf_counter() - self._t
        size = int((logs or {}).get("size") or 0)
        if dt > 0 and size:
            self._report("training", samples_per_s=size / dt, compute_s=dt, comm_s=0.0,
                         wait_s=0.0, local_batch=size, loss=(logs or {}).get("loss"))  # fmt: skip

    def on_train_end(self, logs=None):
        self._report("idle")
        self.monitor.flush()


class LocalRun:
    """A single-process ``fit`` running in a background thread (``Workbench.fit(block=False)``).

    ``done``/``running``, ``wait(timeout)`` (the History, or re-raises the training error)
    and ``stop()`` (training ends after the current epoch).
    """

    def __init__(self, model: Any, target: Any) -> None:
        self.model = model
        self.result: Any = None
        self.error: BaseException | None = None
        self._done = threading.Event()

        def main() -> None:
            try:
                self.result = target()
            except BaseException as exc:  # noqa: BLE001 - re-raised by wait()
                self.error = exc
            finally:
                self._done.set()

        self._thread = threading.Thread(target=main, name="mao-local-fit", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def running(self) -> bool:
        return not self.done

    def stop(self) -> None:
        """Ask training to stop at the end of the current epoch."""
        self.model.stop_training = True

    def wait(self, timeout: float | None = None) -> Any:
        """Block until training ends; the History, or the training error re-raised."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    def __repr__(self) -> str:
        return f"<LocalRun {'done' if self.done else 'running'}>"


class InspectorRefresh(Callback):
    """Keeps the graph's layer inspection current while ``fit`` runs (at most 1x/s)."""

    def __init__(self, graph: ModelGraph) -> None:
        self.graph = graph

    def on_batch_end(self, batch, logs=None):
        self.graph.refresh_inspection(min_interval=1.0)

    def on_epoch_end(self, epoch, logs=None):
        self.graph.refresh_inspection(min_interval=0.0)

    def on_train_end(self, logs=None):
        self.graph.refresh_inspection(wait=True)


class Workbench(ipw.VBox):
    """Graph + editor + inspector, training curves and the engine monitor in one widget.

    Args:
        model: a ``mao_lab.Sequential``.
        cluster: optional ``mao_lab.distributed.Cluster``; its engines appear in the monitor
            and ``fit`` trains on it.
        samples: optional inputs for the inspector's activation view.
        rows: layers per graph column.

    Example:
        >>> wb = Workbench(model)                     # doctest: +SKIP
        >>> wb                                        # doctest: +SKIP
        >>> wb.fit(x, y, epochs=3)                    # doctest: +SKIP
    """

    def __init__(self, model: Any, cluster: Any = None, samples: Any = None, rows: int = 5,
                 **kwargs: Any) -> None:  # fmt: skip
        self.model, self.cluster = model, cluster
        self.graph = ModelGraph(model, samples=samples, rows=rows)
        self.dashboard = TrainingDashboard()
        self.monitor = EngineMonitor()
        self.handle: Any = None
        if cluster is not None:
            self.monitor.update(_inventory_rows(cluster))
            self.monitor.flush()
        super().__init__([self.graph, self.dashboard, self.monitor], **kwargs)
        self.add_class("mao-workbench")

    def callbacks(self) -> list[Callback]:
        """The callbacks that feed this workbench from a ``fit`` you call yourself."""
        cbs: list[Callback] = [self.dashboard.callback(), InspectorRefresh(self.graph)]
        if self.cluster is None:
            cbs.append(LocalEngineFeed(self.monitor))
        return cbs

    def fit(self, *args: Any, callbacks: list | None = None, block: bool = True,
            **kwargs: Any) -> Any:  # fmt: skip
        """``model.fit`` with this workbench's callbacks (and ``cluster=`` when it has one).

        With ``block=False`` the call returns at once, so the notebook (and the Stop button
        and the editor, whose messages the kernel handles between cells) stay live: on a
        cluster it returns the distributed ``TrainingHandle``, which the graph, dashboard and
        monitor follow; without one, a ``LocalRun`` training in a background thread (edits
        land between two steps). With ``block=True`` it returns the History.
        """
        cbs = [*self.callbacks(), *(callbacks or [])]
        kwargs.setdefault("verbose", 0)
        if self.cluster is not None:
            kwargs.setdefault("cluster", self.cluster)
            result = self.model.fit(*args, callbacks=cbs, block=block, **kwargs)
            if hasattr(result, "subscribe") and hasattr(result, "stop"):
                self.follow(result)
            return result
        if block:
            return self.model.fit(*args, callbacks=cbs, **kwargs)
        run = LocalRun(self.model, lambda: self.model.fit(*args, callbacks=cbs, **kwargs))
        self.handle = run
        self.dashboard.attach(run)
        return run

    def follow(self, handle: Any) -> None:
        """Follow a running distributed fit: pending edits, stop button, engine metrics."""
        self.handle = handle
        self.graph.attach(handle)
        self.dashboard.attach(handle)
        self.monitor.watch(handle)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view, plus a static HTML snapshot for nbconvert and docs."""
        g, d = self.graph, self.dashboard
        snapshot = (graph_svg(g.nodes, g.edges, g.size, g.model_name) + curves_svg(d.series)
                    + engines_table(self.monitor.rows))
        return add_html(super()._repr_mimebundle_(**kwargs), snapshot)

    def close(self) -> None:
        """Close the three widgets and this layout."""
        for w in (self.graph, self.dashboard, self.monitor):
            w.close()
        super().close()


def _inventory_rows(cluster: Any) -> list[dict[str, Any]]:
    rows = []
    for info in cluster.inventory():
        devices = list(getattr(info, "devices", []) or [])
        chosen = getattr(info, "device", None) or (devices[0].get("key") if devices else "?")
        vendor = next((d.get("vendor", "") for d in devices if d.get("key") == chosen), "")
        rows.append({"id": int(info.id), "host": str(info.host), "device": str(chosen),
                     "vendor": str(vendor or ""), "status": "idle"})  # fmt: skip
    return rows
