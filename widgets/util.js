// Shared drawing helpers of the mao_lab widgets. Plain functions, no exports: mao_lab's
// Python prepends this file to each widget module (see mao_lab/widgets/_bundle.py).
const SVGNS = "http://www.w3.org/2000/svg";

function el(tag, cls, parent, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (parent) parent.appendChild(node);
  return node;
}

function svgEl(tag, attrs, parent) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function fmtCount(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  if (a > 0 && a < 0.01) return n.toExponential(1);
  return String(Math.round(n * 100) / 100);
}

function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

// Bars of a histogram {counts, edges}; returns an <svg>.
function histogramSvg(hist, cls, width, height) {
  const root = svgEl("svg", { class: cls, width, height, viewBox: `0 0 ${width} ${height}` });
  const counts = hist.counts || [];
  const top = Math.max(1, ...counts);
  const bw = width / Math.max(1, counts.length);
  counts.forEach((c, i) => {
    const h = (c / top) * (height - 2);
    svgEl("rect", { class: "mao-hist-bar", x: i * bw + 0.5, y: height - h,
      width: Math.max(1, bw - 1), height: h }, root);
  });
  return root;
}

// A polyline of recent values scaled to the box; returns an <svg>.
function sparklineSvg(values, cls, width, height) {
  const root = svgEl("svg", { class: cls, width, height, viewBox: `0 0 ${width} ${height}` });
  const vals = (values || []).filter((v) => Number.isFinite(v));
  if (vals.length < 2) return root;
  const lo = Math.min(...vals), hi = Math.max(...vals), span = hi - lo || 1;
  const pts = vals.map((v, i) => [
    (i / (vals.length - 1)) * (width - 2) + 1,
    height - 1 - ((v - lo) / span) * (height - 2),
  ]);
  svgEl("polyline", { class: "mao-spark-line", points: pts.map((p) => p.join(",")).join(" ") }, root);
  return root;
}

// Report a failing request or handler without breaking the view.
function safe(fn) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      console.error("[mao_lab widget]", err);
      return undefined;
    }
  };
}
