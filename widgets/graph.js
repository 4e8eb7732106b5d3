// ModelGraph widget: composes the canvas (graph_draw.js), the editor (graph_editor.js) and
// the inspector (graph_inspect.js). Python owns all state; this file wires views to traits.

function render({ model, el: root }) {
  root.classList.add("mao-widget", "mao-graph");
  const bar = el("div", "mao-toolbar", root);
  const title = el("span", "mao-title", bar);
  const zoomOut = el("button", "mao-button mao-zoom-out", bar, "−");
  const zoomLabel = el("span", "mao-zoom-label", bar);
  const zoomIn = el("button", "mao-button mao-zoom-in", bar, "+");
  const fitBtn = el("button", "mao-button mao-zoom-fit", bar, "fit");
  const undoBtn = el("button", "mao-button mao-undo", bar, "Undo");
  const body = el("div", "mao-graph-body", root);
  const viewport = el("div", "mao-graph-viewport", body);
  const svgRoot = svgEl("svg", { class: "mao-graph-svg" }, viewport);
  const side = el("div", "mao-graph-side", body);
  const editor = el("div", "mao-editor", side);
  const status = el("div", "mao-status", side);
  const pending = el("div", "mao-pending", side);
  const inspect = el("div", "mao-inspect", side);
  let zoom = 1, counter = 0;

  const send = (action, payload) => {
    counter += 1;
    const id = `${Date.now().toString(36)}-${counter}`;
    status.className = "mao-status mao-busy";
    status.textContent = `${action}…`;
    model.send({ id, action, ...payload });
  };
  const draw = safe(() => {
    const nodes = model.get("nodes"), size = model.get("size") || {};
    title.textContent = `${model.get("model_name") || "model"} · ${nodes.length - 1} layers`;
    zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
    drawGraph(svgRoot, nodes, model.get("edges"), size, zoom, model.get("selected"), (id) => {
      model.set("selected", id);
      model.save_changes();
    });
  });
  const setZoom = (z) => { zoom = Math.min(3, Math.max(0.1, z)); draw(); };
  const drawEditor = safe(() => renderEditor(editor, model, send));
  const drawInspect = safe(() => renderInspect(inspect, model));
  const drawPending = safe(() => renderPending(pending, model.get("pending")));
  const onReply = safe((msg) => {
    if (!msg || msg.type !== "reply") return;
    showReply(editor, status, msg);
  });

  zoomOut.addEventListener("click", () => setZoom(zoom / 1.25));
  zoomIn.addEventListener("click", () => setZoom(zoom * 1.25));
  fitBtn.addEventListener("click", () => {
    const size = model.get("size") || {};
    const fx = viewport.clientWidth / Math.max(1, size.width || 1);
    const fy = viewport.clientHeight / Math.max(1, size.height || 1);
    setZoom(Math.min(1, fx, fy));
  });
  undoBtn.addEventListener("click", () => send("undo", {}));
  const stopPan = enablePan(viewport, (f) => setZoom(zoom * f));

  const redrawAll = () => { draw(); drawEditor(); };
  const onSelect = () => { status.className = "mao-status"; status.textContent = ""; redrawAll(); };
  model.on("change:nodes", redrawAll);
  model.on("change:edges", draw);
  model.on("change:size", draw);
  model.on("change:selected", onSelect);
  model.on("change:fields", drawEditor);
  model.on("change:inspection", drawInspect);
  model.on("change:pending", drawPending);
  model.on("msg:custom", onReply);
  redrawAll();
  drawInspect();
  drawPending();
  root.dataset.ready = "1";

  return () => {
    stopPan();
    model.off("change:nodes", redrawAll);
    model.off("change:edges", draw);
    model.off("change:size", draw);
    model.off("change:selected", onSelect);
    model.off("change:fields", drawEditor);
    model.off("change:inspection", drawInspect);
    model.off("change:pending", drawPending);
    model.off("msg:custom", onReply);
  };
}

export default { render };
