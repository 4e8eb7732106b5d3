// ModelGraph inspector: weight and gradient histograms with norms, and the activations of
// one input sample (feature maps for conv layers, per-unit bars for dense ones).

function histBlock(parent, title, hist, cls) {
  const block = el("div", "mao-hist " + cls, parent);
  el("div", "mao-hist-title", block,
    `${title}  ‖·‖=${fmtCount(hist.norm)}  μ=${fmtCount(hist.mean)}  σ=${fmtCount(hist.std)}`);
  block.appendChild(histogramSvg(hist, "mao-hist-svg", 200, 40));
  el("div", "mao-hist-range", block, `[${fmtCount(hist.min)}, ${fmtCount(hist.max)}]`);
}

function drawMap(map, h, w) {
  const canvas = el("canvas", "mao-map");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  map.data.forEach((v, i) => {
    const g = Math.round(255 * v);
    img.data.set([g, g, g, 255], i * 4);
  });
  ctx.putImageData(img, 0, 0);
  canvas.title = `min ${fmtCount(map.min)}, max ${fmtCount(map.max)}`;
  return canvas;
}

function drawBars(values) {
  const width = 240, height = 60;
  const root = svgEl("svg", { class: "mao-act-bars", width, height,
    viewBox: `0 0 ${width} ${height}` });
  const top = Math.max(1e-12, ...values.map(Math.abs));
  const bw = width / Math.max(1, values.length), mid = height / 2;
  values.forEach((v, i) => {
    const h = (Math.abs(v) / top) * (mid - 1);
    svgEl("rect", { class: "mao-act-bar" + (v < 0 ? " mao-neg" : ""), x: i * bw,
      y: v < 0 ? mid : mid - h, width: Math.max(1, bw - 0.5), height: h }, root);
  });
  return root;
}

function renderInspect(box, model) {
  // A refresh while training runs must not wipe a sample index being typed: wait for it.
  const active = document.activeElement;
  if (active && box.contains(active) && active.classList.contains("mao-sample-index")) return;
  box.replaceChildren();
  const info = model.get("inspection") || {};
  if (!info.layer) return;
  el("div", "mao-inspect-title", box, `Inspect ${info.layer}`);
  if (info.error) {
    el("div", "mao-error", box, info.error);
    return;
  }
  const weights = Object.entries(info.weights || {});
  if (!weights.length) el("div", "mao-editor-hint", box, "no weights");
  for (const [k, h] of weights) histBlock(box, `weight ${k}`, h, "mao-hist-weight");
  for (const [k, h] of Object.entries(info.grads || {})) histBlock(box, `grad ${k}`, h, "mao-hist-grad");
  const n = model.get("num_samples");
  if (!n) return;
  const row = el("label", "mao-field mao-sample", box);
  el("span", "mao-field-label", row, `sample (0–${n - 1})`);
  const input = el("input", "mao-input mao-sample-index", row);
  input.type = "text";
  input.value = String(model.get("sample_index"));
  const commit = () => {
    const v = parseInt(input.value, 10);
    input.blur();  // committed: let the refreshed inspection replace this panel
    if (Number.isFinite(v)) { model.set("sample_index", v); model.save_changes(); }
  };
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); commit(); } });
  input.addEventListener("change", commit);
  const act = info.activations;
  if (!act) return;
  const view = el("div", "mao-activations", box);
  if (act.kind === "maps") {
    el("div", "mao-hist-title", view, `${act.channels} feature maps (${act.maps.length} shown)`);
    const grid = el("div", "mao-map-grid", view);
    for (const m of act.maps) grid.appendChild(drawMap(m, act.h, act.w));
  } else {
    el("div", "mao-hist-title", view, `${act.units} units (${act.values.length} shown)`);
    view.appendChild(drawBars(act.values));
  }
}
