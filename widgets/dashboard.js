// TrainingDashboard: loss and metric charts (train solid, validation dashed), progress with
// ETA, and a stop button. Python sends downsampled series; this only draws them.

const CHART_W = 360, CHART_H = 170, PAD = { l: 44, r: 10, t: 18, b: 22 };

function lineChart(title, entries) {
  const root = svgEl("svg", { class: "mao-chart", width: CHART_W, height: CHART_H,
    viewBox: `0 0 ${CHART_W} ${CHART_H}` });
  svgEl("text", { x: PAD.l, y: 12, class: "mao-chart-title" }, root).textContent = title;
  const all = entries.flatMap(([, pts]) => pts);
  if (!all.length) {
    svgEl("text", { x: CHART_W / 2, y: CHART_H / 2, class: "mao-chart-empty",
      "text-anchor": "middle" }, root).textContent = "waiting for data";
    return root;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const w = CHART_W - PAD.l - PAD.r, h = CHART_H - PAD.t - PAD.b;
  const sx = (x) => PAD.l + ((x - x0) / (x1 - x0)) * w;
  const sy = (y) => PAD.t + h - ((y - y0) / (y1 - y0)) * h;
  svgEl("rect", { x: PAD.l, y: PAD.t, width: w, height: h, class: "mao-chart-frame" }, root);
  for (const [v, anchor] of [[y1, "start"], [y0, "end"]]) {
    svgEl("text", { x: PAD.l - 4, y: sy(v), class: "mao-chart-tick", "text-anchor": "end",
      "dominant-baseline": anchor === "start" ? "hanging" : "auto" }, root).textContent = fmtCount(v);
  }
  svgEl("text", { x: PAD.l, y: CHART_H - 6, class: "mao-chart-tick" }, root).textContent = `step ${x0}`;
  svgEl("text", { x: PAD.l + w, y: CHART_H - 6, class: "mao-chart-tick", "text-anchor": "end" },
    root).textContent = `${x1}`;
  entries.forEach(([name, pts], i) => {
    if (!pts.length) return;
    const cls = `mao-line mao-line-${i}` + (name.startsWith("val_") ? " mao-line-val" : "");
    svgEl("polyline", { class: cls, "data-series": name, "data-points": pts.length,
      points: pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }, root);
    if (name.startsWith("val_")) {
      for (const p of pts) svgEl("circle", { class: cls + " mao-dot", cx: sx(p[0]), cy: sy(p[1]), r: 2.5 }, root);
    }
    const last = pts[pts.length - 1][1];
    svgEl("text", { x: PAD.l + 6 + i * 120, y: PAD.t + 12, class: `mao-legend-${i} mao-chart-legend` },
      root).textContent = `${name} ${fmtCount(last)}`;
  });
  return root;
}

function render({ model, el: root }) {
  root.classList.add("mao-widget", "mao-dashboard");
  const bar = el("div", "mao-toolbar", root);
  el("span", "mao-title", bar, "Training");
  const statusEl = el("span", "mao-dash-status", bar);
  const stopBtn = el("button", "mao-button mao-stop", bar, "Stop");
  const prog = el("div", "mao-bar mao-dash-progress", root);
  const fill = el("div", "mao-bar-fill", prog);
  const progLabel = el("span", "mao-bar-label", prog);
  const charts = el("div", "mao-charts", root);
  const draw = safe(() => {
    const series = model.get("series") || {};
    const p = model.get("progress") || {};
    const status = model.get("status");
    statusEl.textContent = status;
    statusEl.className = `mao-dash-status mao-dash-${status}`;
    stopBtn.disabled = status !== "training";
    fill.style.width = `${Math.min(100, (p.fraction || 0) * 100).toFixed(1)}%`;
    progLabel.textContent = p.epochs ? `epoch ${p.epoch}/${p.epochs} · batch ${p.batch}` +
      `${p.steps ? "/" + p.steps : ""} · ${fmtSeconds(p.elapsed)} elapsed` +
      `${status === "training" ? " · ETA " + fmtSeconds(p.eta) : ""}` : "not started";
    const names = Object.keys(series);
    const metricNames = [...new Set(names.map((n) => n.replace(/^val_/, "")))].filter((n) => n !== "loss");
    charts.replaceChildren();
    const pick = (base) => [[base, series[base] || []], [`val_${base}`, series[`val_${base}`] || []]];
    charts.appendChild(lineChart("loss", pick("loss")));
    for (const m of metricNames) charts.appendChild(lineChart(m, pick(m)));
  });
  stopBtn.addEventListener("click", () => model.send({ id: String(Date.now()), action: "stop" }));
  model.on("change:series", draw);
  model.on("change:progress", draw);
  model.on("change:status", draw);
  draw();
  return () => {
    model.off("change:series", draw);
    model.off("change:progress", draw);
    model.off("change:status", draw);
  };
}

export default { render };
