// ModelGraph canvas: nodes and edges at the positions Python computed, zoom buttons,
// ctrl+wheel zoom and drag-to-pan inside a scrolling viewport.

function drawGraph(svgRoot, nodes, edges, size, zoom, selected, onSelect) {
  svgRoot.replaceChildren();
  const w = Math.max(1, size.width || 1), h = Math.max(1, size.height || 1);
  svgRoot.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svgRoot.setAttribute("width", String(Math.round(w * zoom)));
  svgRoot.setAttribute("height", String(Math.round(h * zoom)));
  const defs = svgEl("defs", {}, svgRoot);
  const marker = svgEl("marker", { id: "mao-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  svgEl("path", { d: "M0,0 L8,4 L0,8 z", class: "mao-arrow" }, marker);
  const edgeLayer = svgEl("g", { class: "mao-edges" }, svgRoot);
  for (const e of edges) {
    const d = e.points.map((p, i) => (i ? "L" : "M") + p[0] + "," + p[1]).join(" ");
    svgEl("path", { d, class: "mao-edge", "data-source": e.source, "data-target": e.target,
      "marker-end": "url(#mao-arrow)" }, edgeLayer);
    if (e.label) {
      const t = svgEl("text", { x: e.label.x, y: e.label.y, class: "mao-edge-label",
        "dominant-baseline": "middle" }, edgeLayer);
      t.textContent = e.label.text;
    }
  }
  const nodeLayer = svgEl("g", { class: "mao-nodes" }, svgRoot);
  for (const n of nodes) {
    const isInput = n.id === "input";
    const cls = "mao-node" + (isInput ? " mao-node-input" : "") +
      (n.id === selected ? " mao-selected" : "");
    const g = svgEl("g", { class: cls, "data-id": n.id, "data-class": n.class_name,
      transform: `translate(${n.x},${n.y})` }, nodeLayer);
    svgEl("rect", { width: n.w, height: n.h, rx: 6, class: "mao-node-box" }, g);
    const lines = [
      [n.id, "mao-node-name"],
      [n.class_name, "mao-node-type"],
      [n.output_shape, "mao-node-shape"],
      [`${fmtCount(n.params)} params${n.device ? " · " + n.device : ""}`, "mao-node-meta"],
    ];
    lines.forEach(([text, c], i) => {
      const t = svgEl("text", { x: 8, y: 15 + i * 15, class: c }, g);
      t.textContent = text.length > 26 ? text.slice(0, 25) + "…" : text;
      if (text.length > 26) svgEl("title", {}, t).textContent = text;
    });
    if (!isInput) g.addEventListener("click", (ev) => { ev.stopPropagation(); onSelect(n.id); });
  }
}

// Drag the background to pan; ctrl/cmd + wheel zooms. Returns a cleanup function.
function enablePan(viewport, onZoom) {
  let drag = null;
  const down = (ev) => {
    if (ev.button !== 0 || ev.target.closest(".mao-node")) return;
    drag = { x: ev.clientX, y: ev.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
    viewport.classList.add("mao-panning");
  };
  const move = (ev) => {
    if (!drag) return;
    viewport.scrollLeft = drag.left - (ev.clientX - drag.x);
    viewport.scrollTop = drag.top - (ev.clientY - drag.y);
  };
  const up = () => { drag = null; viewport.classList.remove("mao-panning"); };
  const wheel = (ev) => {
    if (!(ev.ctrlKey || ev.metaKey)) return;
    ev.preventDefault();
    onZoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15);
  };
  viewport.addEventListener("mousedown", down);
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
  viewport.addEventListener("wheel", wheel, { passive: false });
  return () => {
    viewport.removeEventListener("mousedown", down);
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    viewport.removeEventListener("wheel", wheel);
  };
}
