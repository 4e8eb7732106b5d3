"""Keras-style summaries of a Sequential model: a text table and an HTML table."""

from __future__ import annotations

import html


def _rows(model) -> list[tuple[str, str, str]]:
    rows = []
    for la in model.layers:
        shape = "?" if la.output_shape is None else str((None,) + tuple(la.output_shape))
        rows.append((f"{la.name} ({type(la).__name__})", shape, f"{la.count_params():,}"))
    return rows


def _totals(model) -> tuple[int, int]:
    trainable = sum(la.trainable_count() for la in model.layers)
    return trainable, model.count_params() - trainable


def summary_text(model) -> str:
    """The table as text (layer (type), output shape, param #, totals)."""
    head = ("Layer (type)", "Output Shape", "Param #")
    rows = _rows(model)
    w = [max(len(r[i]) for r in rows + [head]) + 3 for i in range(3)]
    width = sum(w)
    line = lambda r: "".join(c.ljust(wi) for c, wi in zip(r, w)).rstrip()  # noqa: E731
    trainable, frozen = _totals(model)
    device = model.backend.key if model._backend is not None else "not placed"
    out = [f'Model: "{model.name}" (device: {device})', "_" * width, line(head), "=" * width]
    for i, r in enumerate(rows):
        out.append(line(r))
        out.append("_" * width if i < len(rows) - 1 else "=" * width)
    if not rows:
        out.append("=" * width)
    out += [f"Total params: {trainable + frozen:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {frozen:,}", "_" * width]
    return "\n".join(out)


def summary_html(model) -> str:
    """The same table as HTML for notebooks."""
    trainable, frozen = _totals(model)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in _rows(model))
    return (f'<div class="mao-summary"><b>Model: {html.escape(model.name)}</b>'
            "<table><tr><th>Layer (type)</th><th>Output Shape</th><th>Param #</th></tr>"
            f"{body}</table><p>Total params: {trainable + frozen:,}<br>Trainable params: "
            f"{trainable:,}<br>Non-trainable params: {frozen:,}</p></div>")
