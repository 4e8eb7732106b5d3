"""Backend fixtures: ``backend`` runs a test once per available device ("numpy" and every
OpenCL device key of mao_lab.backends.available_keys())."""

from __future__ import annotations

import pytest

from mao_lab.backends import available_keys, get_backend


def backend_keys() -> list[str]:
    """"numpy" first, then every OpenCL device key (no OpenCL driver: numpy alone)."""
    try:
        keys = available_keys()
    except Exception:  # noqa: BLE001 - a broken driver must not hide the numpy tests
        keys = []
    return ["numpy"] + [k for k in keys if k != "numpy"]


BACKEND_KEYS = backend_keys()


@pytest.fixture(params=BACKEND_KEYS, ids=BACKEND_KEYS)
def backend(request):
    """One backend per available device."""
    return get_backend(request.param)


@pytest.fixture(params=[k for k in BACKEND_KEYS if k != "numpy"] or [None])
def opencl_backend(request):
    """One backend per OpenCL device (skipped when there is none)."""
    if request.param is None:
        pytest.skip("no OpenCL device on this machine")
    return get_backend(request.param)
