"""The Workbench in a real JupyterLab in Chromium: what a person sees and does.

One page for the module (opening Lab and running the notebook once); the tests run in
order: graph drawn, edit by click + typing + Enter, refused edits, live training curves,
the engine monitor, screenshots, and no JavaScript errors.
"""

from __future__ import annotations

import time

import pytest
from _lab import JsErrors, kernel_json, open_and_run

pytestmark = pytest.mark.browser
NB = "workbench_single.ipynb"
GRAPH = ".mao-graph"


@pytest.fixture(scope="module")
def lab_page(browser, jupyter_lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = JsErrors().attach(page)
    open_and_run(page, jupyter_lab, NB)
    page.wait_for_selector(f"{GRAPH} .mao-node", timeout=90_000)
    kc = jupyter_lab.kernel_client(NB)
    # the notebook's last cell trains one epoch: wait until it finished
    page.wait_for_selector(".mao-dashboard .mao-dash-done", timeout=120_000)
    yield page, kc, errors
    kc.stop_channels()
    context.close()


def node_shape(page, name):
    return page.locator(f'{GRAPH} .mao-node[data-id="{name}"] .mao-node-shape').text_content()


def config(kc):
    return kernel_json(kc, "model.get_config()")


def type_and_enter(page, field, value):
    box = page.locator(f'{GRAPH} .mao-field[data-name="{field}"] input')
    box.fill(value)
    box.press("Enter")


def test_graph_shows_one_node_per_layer_with_shapes(lab_page, img_dir):
    page, kc, _ = lab_page
    n_layers = kernel_json(kc, "len(model.layers)")
    nodes = page.locator(f"{GRAPH} .mao-node:not(.mao-node-input)")
    assert nodes.count() == n_layers == 8
    assert page.locator(f"{GRAPH} .mao-edge").count() == n_layers
    assert node_shape(page, "c1") == "(6, 28, 28)"
    assert node_shape(page, "flat") == "(400,)"
    labels = page.locator(f"{GRAPH} .mao-edge-label").all_text_contents()
    assert "(400,)" in labels and "(1, 28, 28)" in labels


def test_edit_units_by_click_type_enter_changes_graph_and_kernel_model(lab_page, img_dir):
    page, kc, _ = lab_page
    page.locator(f'{GRAPH} .mao-node[data-id="f6"]').click()
    page.wait_for_selector(f'{GRAPH} .mao-field[data-name="units"] input')
    assert page.locator(f"{GRAPH} .mao-editor-title").text_content() == "f6"
    kinds = page.locator(f"{GRAPH} .mao-field select").count()
    assert kinds >= 1  # activation is a choice
    type_and_enter(page, "units", "32")
    page.wait_for_function(
        f"""() => document.querySelector('{GRAPH} .mao-node[data-id="f6"] .mao-node-shape')
        .textContent === '(32,)'""", timeout=20_000)
    assert node_shape(page, "out") == "(10,)"
    layers = {la["config"]["name"]: la["config"] for la in config(kc)["layers"]}
    assert layers["f6"]["units"] == 32
    params = page.locator(f'{GRAPH} .mao-node[data-id="out"] .mao-node-meta').text_content()
    assert params.startswith(f"{32 * 10 + 10} params")
    assert "mao-ok" in page.locator(f"{GRAPH} .mao-status").get_attribute("class")
    page.locator(f"{GRAPH}").screenshot(path=str(img_dir / "model_graph.png"))


@pytest.mark.parametrize("layer,field,value", [("f6", "units", "-3"), ("c3", "kernel_size", "40")])
def test_invalid_value_shows_error_next_to_field_and_model_is_unchanged(lab_page, layer, field,
                                                                         value):
    page, kc, _ = lab_page
    before = config(kc)
    shape_before = node_shape(page, layer)
    page.locator(f'{GRAPH} .mao-node[data-id="{layer}"]').click()
    page.wait_for_function(
        f"() => document.querySelector('{GRAPH} .mao-editor-title')?.textContent === '{layer}'")
    type_and_enter(page, field, value)
    err = page.locator(f'{GRAPH} .mao-field[data-name="{field}"] .mao-field-error')
    err.wait_for(state="visible", timeout=20_000)
    assert field in err.text_content() or "refused" in err.text_content()
    assert "mao-error" in page.locator(f"{GRAPH} .mao-status").get_attribute("class")
    assert config(kc) == before
    assert node_shape(page, layer) == shape_before


def test_loss_curve_grows_while_training_runs_and_monitor_shows_the_engine(lab_page, img_dir):
    page, kc, _ = lab_page
    # start a longer fit without waiting: the browser keeps receiving updates meanwhile
    kc.execute("history = wb.fit(x, y, batch_size=16, epochs=2)")
    page.wait_for_selector(".mao-dashboard .mao-dash-training", timeout=30_000)
    line = page.locator('.mao-dashboard polyline[data-series="loss"]')
    counts = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(set(counts)) < 3:
        if line.count():
            counts.append(int(line.first.get_attribute("data-points")))
        page.wait_for_timeout(250)
    assert len(set(counts)) >= 3 and counts == sorted(counts), counts
    rows = page.locator(".mao-monitor .mao-engine")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-status") == "training"
    sps = rows.first.locator(".mao-sps-value").text_content()
    assert float(sps.rstrip("k")) > 0
    page.locator(".mao-dashboard").screenshot(path=str(img_dir / "training_dashboard.png"))
    page.wait_for_selector(".mao-dashboard .mao-dash-done", timeout=120_000)
    page.locator(".mao-monitor").screenshot(path=str(img_dir / "engine_monitor.png"))


def test_inspector_shows_histograms_and_activations(lab_page, img_dir):
    page, _, _ = lab_page
    page.locator(f'{GRAPH} .mao-node[data-id="c1"]').click()
    page.wait_for_function(f"() => document.querySelector('{GRAPH} .mao-inspect-title')"
                           "?.textContent === 'Inspect c1'", timeout=20_000)
    page.wait_for_selector(f"{GRAPH} .mao-map", timeout=20_000)
    assert page.locator(f"{GRAPH} .mao-map").count() == 6  # one feature map per filter
    assert page.locator(f"{GRAPH} .mao-hist-weight").count() == 2  # kernel, bias
    page.locator(f'{GRAPH} .mao-node[data-id="f5"]').click()
    page.wait_for_function(f"() => document.querySelector('{GRAPH} .mao-inspect-title')"
                           "?.textContent === 'Inspect f5'", timeout=20_000)
    page.wait_for_selector(f"{GRAPH} .mao-act-bars", timeout=20_000)
    assert page.locator(f"{GRAPH} .mao-act-bar").count() == 120
    page.locator(".mao-workbench").screenshot(path=str(img_dir / "workbench.png"))


def test_no_javascript_errors(lab_page):
    _, _, errors = lab_page
    assert list(errors) == []
