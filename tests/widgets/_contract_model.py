"""A minimal model implementing the contract's graph / live-edit / observe API over the real
layers, used by the widget tests when ``mao_lab.model`` is not available.
"""

from __future__ import annotations

import networkx as nx

from mao_lab.errors import EditError, MaoLabError
from mao_lab.layers import deserialize, serialize


def make_model(layers, input_shape):
    """The real ``mao_lab.Sequential`` when present, else the contract stand-in below."""
    try:
        from mao_lab.model import Sequential
    except ImportError:
        return ContractModel(layers, input_shape)
    return Sequential(layers, input_shape=input_shape)


class ContractModel:
    def __init__(self, layers, input_shape, name="contract_model"):
        self.name = name
        self.input_shape = tuple(input_shape)
        self.layers = list(layers)
        self._observers = []
        self._history = []
        self._build(self.layers)

    def _build(self, layers):
        shape = self.input_shape
        for layer in layers:
            if not layer.built or layer.input_shape != shape:
                layer.build(shape)
            shape = layer.output_shape

    @property
    def graph(self):
        g = nx.DiGraph()
        g.add_node("input", index=-1, class_name="Input", config={}, output_shape=self.input_shape,
                   params=0, device="numpy")
        prev, shape = "input", self.input_shape
        for i, layer in enumerate(self.layers):
            g.add_node(layer.name, index=i, class_name=type(layer).__name__,
                       config=layer.get_config(), output_shape=layer.output_shape,
                       params=layer.count_params(), device="numpy")
            g.add_edge(prev, layer.name, shape=shape)
            prev, shape = layer.name, layer.output_shape
        return g

    def observe(self, callback):
        self._observers.append(callback)
        return lambda: self._observers.remove(callback)

    def _emit(self, kind):
        for cb in list(self._observers):
            cb({"type": kind})

    def _index(self, layer):
        if isinstance(layer, int):
            return layer
        name = layer if isinstance(layer, str) else layer.name
        for i, la in enumerate(self.layers):
            if la.name == name:
                return i
        raise EditError(f"no layer {name!r}")

    def _commit(self, new_layers, kind):
        try:
            fresh = [deserialize(serialize(la)) if la not in self.layers else la
                     for la in new_layers]
            shape = self.input_shape
            for la in fresh:
                shape = la.compute_output_shape(shape)
            self._build(fresh)
        except MaoLabError as exc:
            raise EditError(f"{kind} refused: {exc}") from exc
        self._history.append(self.layers)
        self.layers = fresh
        self._emit(kind)

    def edit(self, layer, **config):
        i = self._index(layer)
        cfg = {**self.layers[i].get_config(), **config}
        try:
            new = deserialize({"class_name": type(self.layers[i]).__name__, "config": cfg})
        except MaoLabError as exc:
            raise EditError(f"edit of {self.layers[i].name} refused: {exc}") from exc
        self._commit(self.layers[:i] + [new] + self.layers[i + 1:], "edit")

    def insert(self, index, layer):
        self._commit(self.layers[:index] + [layer] + self.layers[index:], "insert")

    def remove(self, layer):
        i = self._index(layer)
        self._commit(self.layers[:i] + self.layers[i + 1:], "remove")

    def undo(self):
        if not self._history:
            raise EditError("nothing to undo")
        self.layers = self._history.pop()
        self._build(self.layers)
        self._emit("undo")

    def get_config(self):
        return {"name": self.name, "input_shape": list(self.input_shape),
                "layers": [serialize(la) for la in self.layers]}
