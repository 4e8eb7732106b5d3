"""The device inventory and backend resolution: devices(), calibrate(), get_backend()
with every accepted spelling, MAO_LAB_DEVICE, and clear errors for unknown devices."""

from __future__ import annotations

import pytest

import mao_lab
from mao_lab.backends import DeviceList, available_keys, get_backend
from mao_lab.backends.inventory import calibrate, opencl_devices
from mao_lab.errors import DeviceError

OPENCL = [info for info, _ in opencl_devices()]
needs_cl = pytest.mark.skipif(not OPENCL, reason="no OpenCL device")


def test_inventory_lists_numpy_and_every_opencl_device():
    devs = mao_lab.devices(calibrated=False)
    assert isinstance(devs, DeviceList)
    assert [d.key for d in devs] == available_keys()
    assert devs[0].key == "numpy" and devs[0].backend == "numpy"
    for d in devs:
        assert d.name and d.platform and d.driver_version and d.device_type
        assert d.compute_units >= 1 and d.global_mem > 0
        assert isinstance(d.fp64, bool)
    keys = [d.key for d in devs[1:]]
    assert len(set(keys)) == len(keys) and all(k.startswith("opencl:") for k in keys)
    # stable: the same keys in the same order on every call
    assert [d.key for d in mao_lab.devices(calibrated=False)] == [d.key for d in devs]


@pytest.mark.parametrize("key", available_keys())
def test_calibrate_gives_a_sensible_figure(key):
    g = calibrate(get_backend(key), n=256)
    # anything from a slow shared CPU to a big GPU; never zero, negative or absurd
    assert 0.5 < g < 1e6


def test_devices_table_prints_and_renders():
    devs = mao_lab.devices(calibrated=True)
    for d in devs:
        assert d.gflops is not None and d.gflops > 0, d.extra
    text = str(devs)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["key", "name"] and "GFLOP/s" in lines[0]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) >= 2 + len(devs)
    for d in devs:
        assert any(line.startswith(d.key) and f"{d.gflops:.1f}" in line for line in lines)
    html = devs._repr_html_()
    assert html.startswith('<table class="mao-devices">') and html.count("<tr>") == 1 + len(devs)
    assert devs.best().gflops == max(d.gflops for d in devs)
    assert repr(devs) == text


def test_numpy_spellings():
    assert get_backend("numpy").kind == "numpy"
    assert get_backend(" NumPy ") is get_backend("numpy")
    assert get_backend("cpu") is get_backend("numpy")
    be = get_backend("numpy")
    assert get_backend(be) is be


@needs_cl
def test_opencl_spellings():
    first = OPENCL[0]
    be = get_backend(first.key)
    assert be.kind == "opencl" and be.key == first.key
    assert get_backend(first.key.upper()) is be
    assert get_backend("opencl").kind == "opencl"
    # platform and device by name substrings (case-insensitive)
    plat = first.platform.split()[0].lower()
    dev = first.name.split("-")[0].split()[0].lower()
    assert get_backend(f"opencl:{plat}:{dev}").key in [i.key for i in OPENCL]
    _, p, d = first.key.split(":")
    assert get_backend(f"opencl:{p}:{d}") is be


def test_auto_picks_the_fastest():
    be = get_backend("auto")
    devs = mao_lab.devices(calibrated=True)
    assert be.key == devs.best().key


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("MAO_LAB_DEVICE", "numpy")
    assert get_backend().kind == "numpy"
    monkeypatch.delenv("MAO_LAB_DEVICE")
    assert get_backend(None).kind == "numpy"
    if OPENCL:
        monkeypatch.setenv("MAO_LAB_DEVICE", OPENCL[0].key)
        assert get_backend().key == OPENCL[0].key
    monkeypatch.setenv("MAO_LAB_DEVICE", "tpu")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        get_backend()


@pytest.mark.parametrize("spec", ["cuda", "gpu0", "metal", ""])
def test_unknown_device_lists_what_is_available(spec):
    with pytest.raises(DeviceError) as info:
        get_backend(spec or "  ")
    msg = str(info.value)
    assert "numpy" in msg and "auto" in msg
    for key in available_keys():
        assert key in msg


@needs_cl
@pytest.mark.parametrize("spec", ["opencl:9:9", "opencl:nvidia:a100", "opencl:0:zzz"])
def test_unknown_opencl_device_lists_devices(spec):
    with pytest.raises(DeviceError) as info:
        get_backend(spec)
    msg = str(info.value)
    assert spec in msg
    for dev in OPENCL:
        assert dev.key in msg and dev.name in msg


@needs_cl
def test_malformed_opencl_spec():
    with pytest.raises(DeviceError, match=r"expected 'opencl:<platform>:<device>'"):
        get_backend("opencl:0")


def test_non_string_spec():
    with pytest.raises(DeviceError, match="must be a string or a Backend"):
        get_backend(3)
