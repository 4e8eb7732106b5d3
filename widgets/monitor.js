// EngineMonitor: one row per engine from the `rows` trait (Python aggregates; this draws).

const COLUMNS = ["engine", "device", "status", "CPU", "memory", "samples/s", "share",
  "step time (compute · comm · wait)", ""];

function bar(frac, cls, label) {
  const box = el("div", "mao-bar " + cls);
  const fill = el("div", "mao-bar-fill", box);
  const f = Number.isFinite(frac) ? Math.max(0, Math.min(1, frac)) : 0;
  fill.style.width = (f * 100).toFixed(1) + "%";
  el("span", "mao-bar-label", box, label);
  return box;
}

function stepBar(row, slowest) {
  const box = el("div", "mao-stepbar");
  const parts = [["compute_s", "mao-seg-compute"], ["comm_s", "mao-seg-comm"],
    ["wait_s", "mao-seg-wait"]];
  let total = 0;
  for (const [k, cls] of parts) {
    const v = row[k];
    if (!Number.isFinite(v) || v <= 0) continue;
    total += v;
    const seg = el("div", "mao-seg " + cls, box);
    seg.style.width = ((v / slowest) * 100).toFixed(1) + "%";
    seg.title = `${k.replace("_s", "")}: ${fmtSeconds(v)}`;
  }
  box.title = parts.map(([k]) => `${k.replace("_s", "")} ${fmtSeconds(row[k])}`).join(" · ");
  el("span", "mao-bar-label mao-step-total", box, total ? fmtSeconds(total) : "–");
  return box;
}

function statusText(row, since) {
  // age_s was measured when Python pushed the rows; add the time since they arrived
  const age = fmtSeconds(row.age_s + (performance.now() - since) / 1000);
  if (row.status === "dead") return `dead ${age} ago`;
  if (row.status === "training") return `training for ${age}`;
  return `idle for ${age}`;
}

function drawRows(table, rows, since) {
  table.replaceChildren();
  const head = el("div", "mao-engine-row mao-engine-head", table);
  for (const c of COLUMNS) el("div", "mao-cell", head, c);
  const slowest = Math.max(1e-9, ...rows.map((r) =>
    (r.compute_s || 0) + (r.comm_s || 0) + (r.wait_s || 0)));
  for (const r of rows) {
    const row = el("div", `mao-engine-row mao-engine mao-status-${r.status}`, table);
    row.dataset.id = String(r.id);
    row.dataset.status = r.status;
    const name = el("div", "mao-cell mao-engine-name", row);
    el("span", "mao-engine-id", name, `#${r.id}`);
    el("span", "mao-engine-host", name, r.host);
    el("div", "mao-cell mao-engine-device", row, r.vendor ? `${r.device} (${r.vendor})` : r.device);
    const st = el("div", "mao-cell mao-engine-status", row);
    el("span", "mao-status-dot", st);
    el("span", "mao-status-text", st, statusText(r, since));
    if (r.error) st.title = r.error;
    const cpu = Number.isFinite(r.cpu) ? r.cpu : NaN;
    el("div", "mao-cell", row).appendChild(
      bar(cpu / 100, "mao-bar-cpu", Number.isFinite(cpu) ? `${cpu.toFixed(0)}%` : "–"));
    const memLabel = Number.isFinite(r.rss) ? fmtCount(r.rss) + "B"
      : Number.isFinite(r.mem) ? `${(r.mem * 100).toFixed(0)}%` : "–";
    el("div", "mao-cell", row).appendChild(bar(r.mem, "mao-bar-mem", memLabel));
    const sps = el("div", "mao-cell mao-engine-sps", row);
    el("span", "mao-sps-value", sps, fmtCount(r.samples_per_s));
    sps.appendChild(sparklineSvg(r.history, "mao-sparkline", 80, 18));
    const share = Number.isFinite(r.share) ? r.share : NaN;
    el("div", "mao-cell", row).appendChild(
      bar(share, "mao-bar-share", Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : "–"));
    el("div", "mao-cell", row).appendChild(stepBar(r, slowest));
    const flag = el("div", "mao-cell mao-engine-flag", row);
    if (r.straggler) {
      el("span", "mao-straggler", flag, "straggler");
      flag.title = "slower than its share of the global batch predicts";
    }
  }
}

function render({ model, el: root }) {
  root.classList.add("mao-widget", "mao-monitor");
  const bar0 = el("div", "mao-toolbar", root);
  const title = el("span", "mao-title", bar0);
  const summary = el("span", "mao-muted mao-monitor-summary", bar0);
  const legend = el("span", "mao-legend", bar0);
  for (const [cls, text] of [["mao-seg-compute", "compute"], ["mao-seg-comm", "communication"],
    ["mao-seg-wait", "waiting"]]) {
    el("span", "mao-legend-swatch " + cls, legend);
    el("span", "mao-legend-text", legend, text);
  }
  const table = el("div", "mao-engine-table", root);
  let since = performance.now();
  const tick = safe(() => {  // keep "training for 12 s" current between updates
    const rows = model.get("rows") || [];
    table.querySelectorAll(".mao-engine").forEach((row, i) => {
      if (rows[i]) row.querySelector(".mao-status-text").textContent = statusText(rows[i], since);
    });
  });
  const timer = setInterval(tick, 1000);
  const draw = safe(() => {
    since = performance.now();
    const rows = model.get("rows") || [];
    const live = rows.filter((r) => r.status !== "dead");
    const total = live.reduce((s, r) => s + (r.samples_per_s || 0), 0);
    title.textContent = model.get("title");
    summary.textContent = `${rows.length} engines · ${live.length} alive · ${fmtCount(total)} samples/s`;
    drawRows(table, rows, since);
  });
  model.on("change:rows", draw);
  draw();
  return () => { clearInterval(timer); model.off("change:rows", draw); };
}

export default { render };
