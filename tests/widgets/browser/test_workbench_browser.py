"""The Workbench in a real JupyterLab in Chromium, with LeNet-5 training non-blocking on a
local 2-engine cluster: what a person sees and does.

One page for the module (Lab opened and the notebook run once); the tests run in order:
graph, monitor, live curves, an edit by click + typing + Enter (pending, then applied at a
step, and in the kernel's model), refused edits, the inspector, the stop button, no JS errors.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _lab import JsErrors, kernel_json, open_and_run

pytestmark = [pytest.mark.browser, pytest.mark.cluster]
NB = "workbench_cluster.ipynb"
GRAPH = ".mao-workbench .mao-graph"


@pytest.fixture(scope="module")
def lab_page(browser, jupyter_lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1500})
    page = context.new_page()
    errors = JsErrors().attach(page)
    kc = None
    try:
        open_and_run(page, jupyter_lab, NB)
        page.wait_for_selector(f"{GRAPH} .mao-node", timeout=90_000)
        kc = jupyter_lab.kernel_client(NB)
        # the cluster started and training runs once both engines report
        page.wait_for_function(
            "() => document.querySelectorAll('.mao-monitor .mao-engine.mao-status-training')"
            ".length === 2", timeout=120_000)
        yield page, kc, errors
    finally:
        if kc is not None:  # stop training and the engines even when a test failed
            kc.execute_interactive("handle.stop(); handle.wait(60); cluster.stop()", timeout=90,
                                   output_hook=lambda _msg: None)
            kc.stop_channels()
        context.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request, lab_page, tmp_path_factory):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        out = Path(request.config.getoption("--output", "test-results"))
        out.mkdir(parents=True, exist_ok=True)
        lab_page[0].screenshot(path=str(out / f"{request.node.name}.png"), full_page=True)


def text(page, selector):
    return page.locator(selector).first.text_content()


def node_shape(page, name):
    return text(page, f'{GRAPH} .mao-node[data-id="{name}"] .mao-node-shape')


def config(kc):
    return kernel_json(kc, "model.get_config()")


def select(page, layer):
    page.locator(f'{GRAPH} .mao-node[data-id="{layer}"]').click()
    page.wait_for_function(f"() => document.querySelector('{GRAPH} .mao-editor-title')"
                           f"?.textContent === '{layer}'", timeout=20_000)


def type_and_enter(page, field, value):
    box = page.locator(f'{GRAPH} .mao-field[data-name="{field}"] input')
    box.wait_for(timeout=20_000)
    box.fill(value)
    box.press("Enter")


def test_graph_shows_one_node_per_layer_with_shapes(lab_page):
    page, kc, _ = lab_page
    n_layers = kernel_json(kc, "len(model.layers)")
    assert page.locator(f"{GRAPH} .mao-node:not(.mao-node-input)").count() == n_layers == 8
    assert page.locator(f"{GRAPH} .mao-edge").count() == n_layers
    assert node_shape(page, "c1") == "(6, 28, 28)"
    assert node_shape(page, "flat") == "(400,)"
    labels = page.locator(f"{GRAPH} .mao-edge-label").all_text_contents()
    assert "(400,)" in labels and "(1, 28, 28)" in labels


def test_monitor_shows_two_engines_with_throughput(lab_page):
    page, _, _ = lab_page
    rows = page.locator(".mao-monitor .mao-engine")
    assert rows.count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('.mao-monitor .mao-sps-value')]"
        ".every((e) => parseFloat(e.textContent) > 0)", timeout=30_000)
    shares = rows.locator(".mao-bar-share .mao-bar-label").all_text_contents()
    assert abs(sum(float(s.rstrip("%")) for s in shares) - 100.0) < 0.5, shares


def test_loss_curve_grows_while_training_runs(lab_page):
    page, _, _ = lab_page
    line = page.locator('.mao-dashboard polyline[data-series="loss"]')
    counts, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline and len(set(counts)) < 3:
        if line.count():
            counts.append(int(line.first.get_attribute("data-points")))
        page.wait_for_timeout(300)
    assert len(set(counts)) >= 3 and counts == sorted(counts), counts
    assert "training" in text(page, ".mao-dashboard .mao-dash-status")


def test_edit_by_typing_enter_is_pending_then_applied_and_in_the_kernel(lab_page, img_dir):
    page, kc, _ = lab_page
    select(page, "f6")
    choice = page.locator(f'{GRAPH} .mao-field[data-name="activation"] select')
    choice.wait_for(timeout=20_000)  # the panel's fields may render just after its title
    assert choice.count() == 1
    type_and_enter(page, "units", "32")
    page.wait_for_function(f"""() => document.querySelector(
        '{GRAPH} .mao-node[data-id="f6"] .mao-node-shape').textContent === '(32,)'""",
                           timeout=20_000)
    applied = page.locator(f"{GRAPH} .mao-pending-applied .mao-pending-status")
    applied.first.wait_for(timeout=60_000)
    assert applied.first.text_content().startswith("applied at step ")
    layers = {la["config"]["name"]: la["config"] for la in config(kc)["layers"]}
    assert layers["f6"]["units"] == 32
    edits = kernel_json(kc, "[dict(e, time=None) for e in handle.edits]")
    assert edits and edits[-1]["applied_step"] is not None
    meta = text(page, f'{GRAPH} .mao-node[data-id="out"] .mao-node-meta')
    assert meta.startswith(f"{32 * 10 + 10} params")
    page.locator(GRAPH).screenshot(path=str(img_dir / "model_graph.png"))


@pytest.mark.parametrize("layer,field,value", [("f6", "units", "-3"), ("c3", "kernel_size", "40")])
def test_invalid_value_shows_error_next_to_field_and_model_is_unchanged(lab_page, layer, field,
                                                                         value):
    page, kc, _ = lab_page
    before, n_edits = config(kc), kernel_json(kc, "len(handle.edits)")
    shape_before = node_shape(page, layer)
    select(page, layer)
    type_and_enter(page, field, value)
    err = page.locator(f'{GRAPH} .mao-field[data-name="{field}"] .mao-field-error')
    err.wait_for(state="visible", timeout=20_000)
    assert field in err.text_content() or "refused" in err.text_content()
    assert "mao-error" in page.locator(f"{GRAPH} .mao-status").get_attribute("class")
    assert config(kc) == before and kernel_json(kc, "len(handle.edits)") == n_edits
    assert node_shape(page, layer) == shape_before


def test_insert_remove_and_undo_from_the_panel(lab_page):
    page, kc, _ = lab_page
    nodes = page.locator(f"{GRAPH} .mao-node:not(.mao-node-input)")

    def wait_count(n):
        page.wait_for_function(f"() => document.querySelectorAll('{GRAPH} .mao-node:not("
                               f".mao-node-input)').length === {n}", timeout=30_000)
        assert kernel_json(kc, "len(model.layers)") == n

    select(page, "f5")
    page.locator(f"{GRAPH} .mao-insert-kind").select_option("Dropout")
    page.locator(f"{GRAPH} .mao-insert").click()
    wait_count(9)
    names = [nodes.nth(i).get_attribute("data-id") for i in range(9)]
    new = names[names.index("f5") + 1]
    assert page.locator(f'{GRAPH} .mao-node[data-id="{new}"]').get_attribute(
        "data-class") == "Dropout"
    select(page, new)
    page.locator(f"{GRAPH} .mao-remove").click()
    wait_count(8)
    page.locator(f"{GRAPH} .mao-undo").click()  # undo the removal
    wait_count(9)
    page.locator(f"{GRAPH} .mao-undo").click()  # undo the insertion
    wait_count(8)
    assert [la["config"]["name"] for la in config(kc)["layers"]] == [
        "c1", "s2", "c3", "s4", "flat", "f5", "f6", "out"]


def test_inspector_shows_histograms_and_activations(lab_page):
    page, _, _ = lab_page
    select(page, "c1")
    page.wait_for_function(f"() => document.querySelector('{GRAPH} .mao-inspect-title')"
                           "?.textContent === 'Inspect c1'", timeout=20_000)
    assert page.locator(f"{GRAPH} .mao-map").count() == 6  # one feature map per filter
    assert page.locator(f"{GRAPH} .mao-hist-weight").count() == 2  # kernel, bias
    assert page.locator(f"{GRAPH} .mao-hist-grad").count() == 2
    select(page, "f5")
    page.wait_for_function(f"() => document.querySelector('{GRAPH} .mao-inspect-title')"
                           "?.textContent === 'Inspect f5'", timeout=20_000)
    bars = page.locator(f"{GRAPH} .mao-act-bar")
    assert bars.count() == 120
    before = bars.evaluate_all("els => els.map((e) => e.getAttribute('height')).join()")
    sample = page.locator(f"{GRAPH} .mao-sample-index")
    sample.fill("3")
    sample.press("Enter")  # another input sample: other activations
    page.wait_for_function(
        f"""(b) => [...document.querySelectorAll('{GRAPH} .mao-act-bar')]
        .map((e) => e.getAttribute('height')).join() !== b""", arg=before, timeout=20_000)
    assert page.locator(f"{GRAPH} .mao-sample-index").input_value() == "3"


def test_stop_button_ends_training_cleanly(lab_page, img_dir):
    page, kc, _ = lab_page
    page.locator(".mao-dashboard").screenshot(path=str(img_dir / "training_dashboard.png"))
    page.locator(".mao-monitor").screenshot(path=str(img_dir / "engine_monitor.png"))
    page.locator(".mao-workbench").screenshot(path=str(img_dir / "workbench.png"))
    page.locator(".mao-dashboard .mao-stop").click()
    page.wait_for_selector(".mao-dashboard .mao-dash-done", timeout=60_000)
    # the dashboard may show "done" a moment before the handle's thread has finished
    deadline = time.monotonic() + 30
    while kernel_json(kc, "handle.done") is not True and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernel_json(kc, "handle.done") is True
    assert kernel_json(kc, "handle.error is None") is True
    assert kernel_json(kc, "handle.progress['epoch'] < 500") is True
    page.wait_for_function(
        "() => document.querySelectorAll('.mao-monitor .mao-engine.mao-status-idle')"
        ".length === 2", timeout=20_000)


def test_deep_graph_of_120_layers_is_readable_scrolls_pans_and_zooms(lab_page, img_dir):
    page, _, _ = lab_page
    deep = page.locator(".mao-graph").filter(
        has=page.locator(".mao-title", has_text="deep120 · 120 layers"))
    assert deep.locator(".mao-node:not(.mao-node-input)").count() == 120
    boxes = deep.locator(".mao-node-box").evaluate_all(
        "els => els.map((e) => { const r = e.getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })")
    for i, (ax, ay, aw, ah) in enumerate(boxes):
        for bx, by, bw, bh in boxes[i + 1:]:
            assert not (ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah)
    view = deep.locator(".mao-graph-viewport")
    svg = deep.locator("svg.mao-graph-svg")
    width = float(svg.get_attribute("width"))
    assert view.evaluate("v => v.scrollWidth > v.clientWidth")  # wider than the view: scrolls
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 30, box["y"] + 12)
    page.mouse.down()
    page.mouse.move(box["x"] + 30, box["y"] + 12, steps=5)
    page.mouse.up()
    assert view.evaluate("v => v.scrollLeft") > 0  # dragged the background: panned
    deep.locator(".mao-zoom-in").click()
    assert float(svg.get_attribute("width")) == pytest.approx(width * 1.25, abs=1)
    deep.locator(".mao-zoom-fit").click()
    assert view.evaluate("v => v.scrollWidth <= v.clientWidth + 1")
    deep.screenshot(path=str(img_dir / "model_graph_120_layers.png"))


def test_a_dead_engine_stays_visible_and_marked(lab_page):
    page, kc, _ = lab_page
    kc.execute_interactive("wb.monitor.mark_dead(1, error='engine 1 stopped answering')",
                           output_hook=lambda _msg: None)
    dead = page.locator('.mao-monitor .mao-engine[data-id="1"].mao-status-dead')
    dead.wait_for(timeout=20_000)
    assert dead.locator(".mao-status-text").text_content().startswith("dead ")
    assert page.locator(".mao-monitor .mao-engine").count() == 2
    assert "1 alive" in text(page, ".mao-monitor .mao-monitor-summary")


def test_no_javascript_errors_and_no_static_fallback_in_lab(lab_page):
    page, _, errors = lab_page
    assert list(errors) == []
    assert page.locator(".mao-static").count() == 0  # Lab shows the live widgets
