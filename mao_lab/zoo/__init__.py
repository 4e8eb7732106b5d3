"""The model zoo: the seed's iris network and LeCun et al. (1998)'s MNIST networks, by name.

``zoo.get(name)`` returns a new, built and compiled model (``compile=False`` for an
uncompiled one); ``zoo.info(name)`` tells its data, parameter count, suggested fit
arguments and LeCun's published full-MNIST test error.

Example:
    >>> from mao_lab import zoo
    >>> zoo.names()[:3]
    ['iris', 'fc300', 'fc1000']
    >>> zoo.get("lenet1").count_params()
    3246
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from . import models
from .boosting import BoostedLeNet4, second_training_set, third_training_set
from .models import fc300, fc300_100, fc1000, iris, lenet1, lenet4, lenet5

__all__ = [
    "BoostedLeNet4", "ZooEntry", "boosted_lenet4", "fc1000", "fc300", "fc300_100", "get",
    "info", "iris", "lenet1", "lenet4", "lenet5", "names", "second_training_set",
    "third_training_set",
]


def boosted_lenet4(*, seed: int = 0, distortions: int = 1, **kwargs) -> BoostedLeNet4:
    """Three LeNet-4s with LeCun et al.'s boosting (see :class:`BoostedLeNet4`)."""
    return BoostedLeNet4(seed=seed, distortions=distortions, **kwargs)


@dataclass(frozen=True)
class ZooEntry:
    """What the zoo knows about one model."""

    name: str
    builder: Callable[..., Any]
    description: str
    dataset: str  # "mnist" | "iris"
    params: int
    lecun_test_error: float | None  # percent, full MNIST (LeCun et al. 1998), None if n/a
    fit: dict[str, Any] = field(default_factory=dict)


_MNIST_FIT = {"batch_size": models.MNIST_DEFAULTS["batch_size"],
              "epochs": models.MNIST_DEFAULTS["epochs"]}
_ENTRIES = [
    ZooEntry("iris", iris, "4-30-20-3 sigmoid MLP, MSE, SGD lr 0.01 (the seed's network)",
             "iris", 833, None,
             {"batch_size": models.IRIS_DEFAULTS["batch_size"],
              "epochs": models.IRIS_DEFAULTS["epochs"]}),
    ZooEntry("fc300", fc300, "784-300-10 fully connected", "mnist", 238_510, 4.7, _MNIST_FIT),
    ZooEntry("fc1000", fc1000, "784-1000-10 fully connected", "mnist", 795_010, 4.5,
             _MNIST_FIT),
    ZooEntry("fc300_100", fc300_100, "784-300-100-10 fully connected", "mnist", 266_610,
             3.05, _MNIST_FIT),
    ZooEntry("lenet1", lenet1, "LeNet-1: conv4-pool-conv12-pool-dense10 on 28x28", "mnist",
             3_246, 1.7, _MNIST_FIT),
    ZooEntry("lenet4", lenet4, "LeNet-4: conv4-pool-conv16-pool-dense120-dense10 on 32x32",
             "mnist", 51_050, 1.1, _MNIST_FIT),
    ZooEntry("lenet5", lenet5, "LeNet-5: conv6-pool-conv16-pool-120-84-10 on 32x32",
             "mnist", 61_706, 0.95, _MNIST_FIT),
    ZooEntry("boosted_lenet4", boosted_lenet4,
             "three LeNet-4s, boosted (2nd: 50/50 right/wrong of the 1st, 3rd: where they "
             "disagree), outputs summed", "mnist", 153_150, 0.7, _MNIST_FIT),
]
_BY_NAME = {e.name: e for e in _ENTRIES}


def _key(name: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"zoo: a model name is a string, one of {', '.join(names())}. "
                          f"Received: {name!r}")
    k = name.strip().lower().replace("-", "").replace(" ", "")
    k = {"fc300100": "fc300_100", "boostedlenet4": "boosted_lenet4"}.get(k, k)
    if k not in _BY_NAME:
        raise ConfigError(f"zoo: unknown model {name!r}; expected one of {', '.join(names())}")
    return k


def names() -> list[str]:
    """Every zoo model name, in a stable order."""
    return [e.name for e in _ENTRIES]


def info(name: str) -> ZooEntry:
    """The :class:`ZooEntry` of ``name`` (case and '-' are ignored: "LeNet-5" works)."""
    return _BY_NAME[_key(name)]


def get(name: str, **kwargs) -> Any:
    """A new model by name: built and, unless ``compile=False``, compiled.

    Keyword arguments go to the builder (e.g. ``learning_rate=0.5`` for iris,
    ``activation="tanh", pooling="avg"`` for the LeNets, ``seed=``). "boosted_lenet4"
    returns a :class:`BoostedLeNet4` (three compiled LeNet-4s), not a Sequential.
    """
    entry = info(name)
    try:
        return entry.builder(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"zoo.get({name!r}): {exc}") from None
