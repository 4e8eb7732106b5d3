"""The pure layout functions: every node placed, no overlapping boxes or labels at 100+
layers, edges start and end on their boxes, wrapping into columns."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from mao_lab.errors import ConfigError
from mao_lab.widgets._layout import (
    BOX_H,
    GAP_Y,
    boxes_overlap,
    generations,
    label_box,
    layered_layout,
)


def chain(n: int) -> nx.DiGraph:
    g = nx.DiGraph()
    names = ["input"] + [f"layer_{i}" for i in range(n)]
    for i, name in enumerate(names):
        g.add_node(name, index=i - 1)
    g.add_edges_from(zip(names, names[1:]))
    return g


def assert_clean(g, lay):
    assert set(lay.boxes) == set(g.nodes)
    boxes = list(lay.boxes.values())
    for a, b in itertools.combinations(boxes, 2):
        assert not boxes_overlap(a, b), (a, b)
    for x, y, w, h in boxes:
        assert 0 <= x and x + w <= lay.width and 0 <= y and y + h <= lay.height
    for e in lay.edges:
        sx, sy, sw, sh = lay.boxes[e["source"]]
        tx, ty, tw, _ = lay.boxes[e["target"]]
        assert e["points"][0] == [sx + sw / 2, sy + sh]
        assert e["points"][-1] == [tx + tw / 2, ty]
        if "label" in e:
            for box in boxes:
                assert not boxes_overlap(label_box(e["label"]), box), (e, box)


@pytest.mark.parametrize("n,rows", [(1, 8), (9, 6), (150, 8), (120, 1), (101, 200)])
def test_chain_layout_has_no_overlaps(n, rows):
    g = chain(n)
    labels = {(u, v): f"({i}, 28, 28)" for i, (u, v) in enumerate(g.edges)}
    lay = layered_layout(g, rows=rows, edge_labels=labels)
    assert_clean(g, lay)
    assert len(lay.edges) == n
    assert all("label" in e for e in lay.edges)
    columns = {x for x, _, _, _ in lay.boxes.values()}
    assert len(columns) == -(-(n + 1) // rows)  # ceil: one column per band of `rows`


def test_wrapped_edges_route_through_the_gutter_between_columns():
    g = chain(5)
    lay = layered_layout(g, rows=3)
    wrap = next(e for e in lay.edges if e["source"] == "layer_1" and e["target"] == "layer_2")
    xs = [p[0] for p in wrap["points"]]
    left_col_right = lay.boxes["layer_1"][0] + lay.boxes["layer_1"][2]
    right_col_left = lay.boxes["layer_2"][0]
    assert any(left_col_right < x < right_col_left for x in xs)
    straight = next(e for e in lay.edges if e["target"] == "layer_0")
    assert len(straight["points"]) == 2


def test_branching_dag_puts_a_generation_side_by_side():
    g = nx.DiGraph([("input", "a"), ("input", "b"), ("a", "c"), ("b", "c")])
    nx.set_node_attributes(g, {"input": -1, "a": 0, "b": 1, "c": 2}, "index")
    lay = layered_layout(g, rows=8, edge_labels={e: "(4,)" for e in g.edges})
    assert generations(g) == [["input"], ["a", "b"], ["c"]]
    assert lay.boxes["a"][1] == lay.boxes["b"][1] and lay.boxes["a"][0] < lay.boxes["b"][0]
    assert lay.boxes["c"][1] == lay.boxes["a"][1] + BOX_H + GAP_Y
    assert_clean(g, lay)


def test_bad_inputs_are_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="rows must be an int >= 1; received rows=0"):
        layered_layout(chain(3), rows=0)
    with pytest.raises(ConfigError, match="acyclic"):
        layered_layout(nx.DiGraph([("a", "b"), ("b", "a")]))
