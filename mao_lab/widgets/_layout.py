"""Pure layout of a layer graph: layered (topological generations), wrapped into columns.

No widget code here: positions, edge routes and label spots are computed in Python and
unit-tested (no overlapping boxes at 100+ layers); the JavaScript only draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ..errors import ConfigError

# Box and gap sizes in CSS pixels; the JavaScript uses the numbers it receives.
BOX_W, BOX_H = 168, 66
GAP_X, GAP_Y = 72, 40
MARGIN = 20
CHAR_W, LABEL_H = 6.6, 12


@dataclass
class Layout:
    """Node boxes, edge routes and the canvas size of a laid-out graph."""

    boxes: dict[str, tuple[float, float, float, float]]  # name -> (x, y, w, h)
    edges: list[dict[str, Any]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def generations(graph: nx.DiGraph) -> list[list[str]]:
    """Topological generations, each sorted by the node's ``index`` attribute then name.

    Raises:
        ConfigError: when the graph has a cycle (a layer graph must be acyclic).
    """
    if not nx.is_directed_acyclic_graph(graph):
        raise ConfigError(
            f"a layer graph must be acyclic; received a graph with a cycle: "
            f"{nx.find_cycle(graph)}"
        )

    def order(n: str) -> tuple[int, str]:
        return (int(graph.nodes[n].get("index", -1)), str(n))

    return [sorted(gen, key=order) for gen in nx.topological_generations(graph)]


def label_width(text: str) -> float:
    """Estimated pixel width of an edge label in the widget's 11px monospace font."""
    return CHAR_W * len(text) + 6


def layered_layout(graph: nx.DiGraph, rows: int = 8, edge_labels: dict | None = None) -> Layout:
    """Lay out ``graph`` top-down by generation, wrapping every ``rows`` generations.

    Generation ``g`` goes to band ``g // rows`` (a column of boxes, left to right) and row
    ``g % rows`` inside it; nodes of one generation sit side by side. An edge inside a band
    is a vertical line (with an elbow when x differs); an edge into the next band runs down,
    through the gutter between bands, and enters its target from above.

    Args:
        graph: a DAG whose nodes may carry an ``index`` attribute (order within a row).
        rows: generations per band (>= 1).
        edge_labels: optional ``{(u, v): text}`` drawn next to each edge.

    Returns:
        A Layout; every edge dict has ``source``, ``target``, ``points`` (list of [x, y])
        and ``label`` ({"x", "y", "text", "w"}) when a text was given.

    Example:
        >>> g = nx.DiGraph([("input", "d1"), ("d1", "d2")])
        >>> lay = layered_layout(g, rows=2)
        >>> lay.boxes["d2"][0] > lay.boxes["input"][0]
        True
    """
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ConfigError(f"rows must be an int >= 1; received rows={rows!r}")
    edge_labels = edge_labels or {}
    gens = generations(graph)
    # Each band is as wide as its widest generation.
    bands = [gens[i : i + rows] for i in range(0, len(gens), rows)]
    band_x, x = [], float(MARGIN)
    for band in bands:
        band_x.append(x)
        x += max(len(g) for g in band) * (BOX_W + GAP_X)
    boxes: dict[str, tuple[float, float, float, float]] = {}
    place: dict[str, tuple[int, int]] = {}  # name -> (band, row)
    for b, band in enumerate(bands):
        for r, gen in enumerate(band):
            y = MARGIN + GAP_Y + r * (BOX_H + GAP_Y)
            for k, node in enumerate(gen):
                boxes[node] = (band_x[b] + k * (BOX_W + GAP_X), y, BOX_W, BOX_H)
                place[node] = (b, r)
    longest = max((len(b) for b in bands), default=0)
    height = MARGIN * 2 + GAP_Y + longest * (BOX_H + GAP_Y)
    width = max(x - GAP_X + MARGIN, MARGIN * 2 + BOX_W) if bands else MARGIN * 2
    edges = [
        _route(u, v, boxes, place, band_x, bands, edge_labels.get((u, v)))
        for u, v in graph.edges
    ]
    return Layout(boxes=boxes, edges=edges, width=width, height=height)


def _route(u, v, boxes, place, band_x, bands, text) -> dict[str, Any]:
    sx, sy, sw, sh = boxes[u]
    tx, ty, tw, _ = boxes[v]
    s = (sx + sw / 2, sy + sh)  # bottom centre of the source
    t = (tx + tw / 2, ty)  # top centre of the target
    (bu, _), (bv, _) = place[u], place[v]
    if bu == bv:
        mid = (s[1] + t[1]) / 2 if t[1] - s[1] <= BOX_H + GAP_Y else t[1] - GAP_Y / 2
        points = [s, (s[0], mid), (t[0], mid), t] if s[0] != t[0] else [s, t]
        spot = (t[0] + 6, t[1] - GAP_Y / 2)
    else:
        # Down into the gap below the source, right through the gutter after its band,
        # up above the first row, across to the target, down into it.
        band_right = band_x[bu] + max(len(g) for g in bands[bu]) * (BOX_W + GAP_X) - GAP_X
        gutter = band_right + GAP_X / 2
        top = MARGIN + GAP_Y / 2
        below = s[1] + GAP_Y / 2
        points = [s, (s[0], below), (gutter, below), (gutter, top), (t[0], top), t]
        spot = (t[0] + 6, t[1] - GAP_Y / 4)
    edge: dict[str, Any] = {"source": u, "target": v, "points": [list(p) for p in points]}
    if text:
        edge["label"] = {"x": spot[0], "y": spot[1], "text": text, "w": label_width(text)}
    return edge


def boxes_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """True when two (x, y, w, h) rectangles share interior area."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def label_box(label: dict[str, Any]) -> tuple[float, float, float, float]:
    """The rectangle an edge label occupies (its ``y`` is the text's vertical centre)."""
    return (label["x"], label["y"] - LABEL_H / 2, label["w"], LABEL_H)
