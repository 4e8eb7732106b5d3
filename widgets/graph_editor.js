// ModelGraph editor panel: typed fields generated from the selected layer's config, Apply /
// Remove / Insert after / Undo requests, and the reply (ok, or an error next to its field).

function fieldInput(spec) {
  let input;
  if (spec.kind === "bool") {
    input = el("input", "mao-input mao-input-bool");
    input.type = "checkbox";
    input.checked = !!spec.value;
  } else if (spec.kind === "choice") {
    input = el("select", "mao-input mao-input-choice");
    for (const c of spec.choices) {
      const o = el("option", "", input, c);
      o.value = c;
    }
    input.value = spec.value;
  } else {
    input = el("input", "mao-input mao-input-" + spec.kind);
    input.type = "text";
    input.inputMode = spec.kind === "int" || spec.kind === "float" ? "decimal" : "text";
    input.value = spec.value === null || spec.value === undefined ? "" : String(spec.value);
    if (spec.nullable) input.placeholder = "none";
  }
  input.name = spec.name;
  return input;
}

function fieldValue(input) {
  return input.type === "checkbox" ? input.checked : input.value;
}

// Build the panel for `selected` into `box`; `send(action, payload)` returns nothing.
function renderEditor(box, model, send) {
  box.replaceChildren();
  const selected = model.get("selected");
  if (!selected) {
    el("div", "mao-editor-hint", box, "Click a layer to edit or inspect it.");
    return {};
  }
  const node = model.get("nodes").find((n) => n.id === selected) || {};
  const head = el("div", "mao-editor-head", box);
  el("span", "mao-editor-title", head, selected);
  el("span", "mao-editor-type", head, `${node.class_name || ""} → ${node.output_shape || ""}`);
  const form = el("div", "mao-editor-fields", box);
  const inputs = {};
  for (const spec of model.get("fields")) {
    const row = el("label", "mao-field", form);
    row.dataset.name = spec.name;
    el("span", "mao-field-label", row, spec.name);
    const input = fieldInput(spec);
    row.appendChild(input);
    el("span", "mao-field-error", row);
    inputs[spec.name] = input;
  }
  const apply = () => {
    const values = {};
    for (const [name, input] of Object.entries(inputs)) values[name] = fieldValue(input);
    send("edit", { layer: selected, values });
  };
  // JupyterLab swallows `change` on Enter inside widgets: commit on keydown as well.
  for (const input of Object.values(inputs)) {
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") { ev.preventDefault(); ev.stopPropagation(); apply(); }
    });
  }
  const actions = el("div", "mao-editor-actions", box);
  const applyBtn = el("button", "mao-button mao-apply", actions, "Apply");
  applyBtn.addEventListener("click", apply);
  const removeBtn = el("button", "mao-button mao-remove", actions, "Remove");
  removeBtn.addEventListener("click", () => send("remove", { layer: selected }));
  const insertRow = el("div", "mao-editor-insert", box);
  el("span", "mao-field-label", insertRow, "insert after");
  const kind = el("select", "mao-input mao-insert-kind", insertRow);
  for (const c of model.get("insertable")) el("option", "", kind, c).value = c;
  const insertBtn = el("button", "mao-button mao-insert", insertRow, "Insert");
  insertBtn.addEventListener("click", () =>
    send("insert", { after: selected, class_name: kind.value }));
  return inputs;
}

// Show a reply in the panel: the error next to its field, or in the status line.
function showReply(box, status, reply) {
  for (const row of box.querySelectorAll(".mao-field")) {
    row.classList.remove("mao-invalid");
    row.querySelector(".mao-field-error").textContent = "";
  }
  status.className = "mao-status " + (reply.ok ? "mao-ok" : "mao-error");
  if (reply.ok) {
    status.textContent = reply.message || `${reply.action}: ${reply.status || "ok"}`;
    return;
  }
  const row = reply.field ? box.querySelector(`.mao-field[data-name="${reply.field}"]`) : null;
  if (row) {
    row.classList.add("mao-invalid");
    row.querySelector(".mao-field-error").textContent = reply.error;
    status.textContent = `${reply.action}: refused, the model is unchanged`;
  } else {
    status.textContent = reply.error;
  }
}

function renderPending(box, pending) {
  box.replaceChildren();
  for (const p of pending || []) {
    const text = p.status === "applied" ? `applied at step ${p.step}`
      : p.status === "failed" ? `failed: ${p.error}` : "pending…";
    const row = el("div", `mao-pending-item mao-pending-${p.status}`, box);
    el("span", "mao-pending-text", row, p.text);
    el("span", "mao-pending-status", row, text);
  }
}
