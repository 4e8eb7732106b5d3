"""Static HTML snapshots of the widgets, added as ``text/html`` beside the live view.

JupyterLab prefers the live widget view; nbconvert, GitHub and docs (no widget manager) show
these snapshots instead: the graph as inline SVG, the curves as SVG polylines, the engines as
a table. Inline styles only, since the widget CSS is not loaded there.
"""

from __future__ import annotations

import html
from typing import Any

_FONT = "font-family:system-ui,sans-serif;font-size:11px"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def add_html(bundle: Any, snapshot: str) -> Any:
    """Add ``text/html`` to an ipywidgets mimebundle (a dict or a (data, metadata) pair)."""
    if isinstance(bundle, tuple):
        data, meta = bundle
        return {**(data or {}), "text/html": snapshot}, meta
    return {**(bundle or {}), "text/html": snapshot}


def graph_svg(nodes: list[dict], edges: list[dict], size: dict, title: str = "") -> str:
    """The model graph as one inline SVG (same layout as the live view)."""
    w, h = int(size.get("width", 10)), int(size.get("height", 10))
    parts = [f'<svg class="mao-static-graph" xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h}" viewBox="0 0 {w} {h}" style="{_FONT}">']  # fmt: skip
    for e in edges:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in e["points"])
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#777"/>')
        if "label" in e:
            lab = e["label"]
            parts.append(f'<text x="{lab["x"]:.1f}" y="{lab["y"]:.1f}" fill="#666" '
                         f'dominant-baseline="middle">{_esc(lab["text"])}</text>')  # fmt: skip
    for n in nodes:
        parts.append(f'<g transform="translate({n["x"]},{n["y"]})"><rect width="{n["w"]}" '
                     f'height="{n["h"]}" rx="6" fill="#fff" stroke="#999"/>')  # fmt: skip
        lines = [n["id"], n["class_name"], n["output_shape"], f'{n["params"]:,} params']
        for i, text in enumerate(lines):
            weight = ' font-weight="600"' if i == 0 else ""
            parts.append(f'<text x="8" y="{15 + 15 * i}"{weight}>{_esc(text)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    head = f"<div style='{_FONT};font-weight:600'>{_esc(title)}</div>" if title else ""
    return f"<div class='mao-static'>{head}{''.join(parts)}</div>"


def _chart(base: str, pts: list[tuple[str, list]], width: int, height: int) -> str:
    every = [p for _, s in pts for p in s]
    x0, x1 = min(p[0] for p in every), max(p[0] for p in every)
    y0, y1 = min(p[1] for p in every), max(p[1] for p in every)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9)
    lines = []
    for k, ((name, s), color) in enumerate(zip(pts, ("#1e88e5", "#e53935"))):
        if not s:
            continue
        p = " ".join(f"{30 + (x - x0) / (x1 - x0) * (width - 40):.1f},"
                     f"{height - 15 - (y - y0) / (y1 - y0) * (height - 30):.1f}" for x, y in s)
        lines.append(f'<polyline points="{p}" fill="none" stroke="{color}"/>'
                     f'<text x="{width - 5}" y="{12 + 12 * k}" text-anchor="end" '
                     f'fill="{color}">{_esc(name)} {s[-1][1]:.4g}</text>')  # fmt: skip
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'style="{_FONT};border:1px solid #ddd"><text x="30" y="12" font-weight="600">'
            f'{_esc(base)}</text>{"".join(lines)}</svg>')  # fmt: skip


def curves_svg(series: dict[str, list], width: int = 360, height: int = 150) -> str:
    """Loss/metric curves as SVG polylines, one chart per base name (train and val_)."""
    charts = []
    for base in sorted({k.removeprefix("val_") for k in series}):
        pts = [(k, series.get(k) or []) for k in (base, f"val_{base}")]
        if any(s for _, s in pts):
            charts.append(_chart(base, pts, width, height))
    body = "".join(charts) or f"<span style='{_FONT}'>no training data yet</span>"
    return f"<div class='mao-static' style='display:flex;gap:8px;flex-wrap:wrap'>{body}</div>"


def engines_table(rows: list[dict]) -> str:
    """The engine rows as a plain HTML table."""
    cols = [("id", "engine"), ("host", "host"), ("device", "device"), ("status", "status"),
            ("samples_per_s", "samples/s"), ("share", "share"), ("straggler", "straggler")]

    def cell(r: dict, key: str) -> str:
        v = r.get(key)
        if key == "share" and v is not None:
            return f"{100 * v:.1f}%"
        if isinstance(v, float):
            return f"{v:.1f}"
        return "" if v in (None, False) else ("yes" if v is True else str(v))

    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{c}</th>" for _, c in cols)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{_esc(cell(r, k))}</td>"
                                    for k, _ in cols) + "</tr>" for r in rows)  # fmt: skip
    return f"<table class='mao-static' style='{_FONT}'><tr>{head}</tr>{body}</table>"
