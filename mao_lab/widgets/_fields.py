"""Editor fields generated from a layer's config, and parsing of what the browser sends back.

A field spec is a JSON dict ``{"name", "kind", "value", "choices"?, "nullable"?}`` with kind
one of int, float, bool, choice, ints (a tuple such as kernel_size), text.
"""

from __future__ import annotations

import ast
from typing import Any

from ..backends.base import ACTIVATIONS
from ..errors import ConfigError
from ..initializers import INITIALIZERS

# Keys whose values come from a fixed set; None is shown as "none".
CHOICES: dict[str, list[str]] = {
    "activation": ["none", *ACTIVATIONS],
    "padding": ["valid", "same"],
    "kernel_initializer": list(INITIALIZERS),
    "bias_initializer": list(INITIALIZERS),
}  # fmt: skip
# Keys that hold ints even when their current value is None (shown as empty, nullable).
INT_KEYS = {"units", "filters", "strides", "pool_size", "kernel_size", "seed"}
READ_ONLY = {"name", "dtype", "trainable"}

# What "insert after" offers, with a config that builds on most inputs.
INSERTABLE: dict[str, dict[str, Any]] = {
    "Dense": {"units": 32, "activation": "relu"},
    "Activation": {"activation": "relu"},
    "Dropout": {"rate": 0.25},
    "BatchNorm": {},
    "Flatten": {},
    "Conv2D": {"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
    "MaxPool2D": {"pool_size": 2},
    "AvgPool2D": {"pool_size": 2},
}


def field_specs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The editor's typed fields for one layer config (read-only keys left out).

    Example:
        >>> [f["kind"] for f in field_specs({"units": 3, "activation": None, "use_bias": True})]
        ['int', 'choice', 'bool']
    """
    specs = []
    for name, value in config.items():
        if name in READ_ONLY:
            continue
        spec: dict[str, Any] = {"name": name, "value": value}
        if name in CHOICES:
            choices = list(CHOICES[name])
            shown = "none" if value is None else str(value)
            if shown not in choices:
                choices.append(shown)
            spec.update(kind="choice", value=shown, choices=choices)
        elif isinstance(value, bool):
            spec["kind"] = "bool"
        elif isinstance(value, int):
            spec["kind"] = "int"
        elif isinstance(value, float):
            spec["kind"] = "float"
        elif isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
            spec.update(kind="ints", value=", ".join(str(v) for v in value))
        elif value is None and name in INT_KEYS:
            spec.update(kind="int", value="", nullable=True)
        else:
            spec.update(kind="text", value="" if value is None else str(value),
                        nullable=value is None)  # fmt: skip
        specs.append(spec)
    return specs


def parse_field(spec: dict[str, Any], raw: Any) -> Any:
    """Turn what the browser sent for one field into the Python value for the config.

    Raises:
        ConfigError: naming the field, the expected kind and the received text.
    """
    name, kind = spec["name"], spec["kind"]
    text = raw.strip() if isinstance(raw, str) else raw

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{name}: expected {expected}; received {raw!r}")

    if text == "" and spec.get("nullable"):
        return None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(text).lower() in ("true", "1", "yes", "on"):
            return True
        if str(text).lower() in ("false", "0", "no", "off"):
            return False
        raise bad("true or false")
    if kind == "int":
        try:
            number = float(text)
        except (TypeError, ValueError):
            raise bad("an integer") from None
        if not number.is_integer():
            raise bad("an integer")
        return int(number)
    if kind == "float":
        try:
            return float(text)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if kind == "choice":
        if text not in spec["choices"]:
            raise bad(f"one of {spec['choices']}")
        return None if text == "none" else text
    if kind == "ints":
        parts = [p for p in str(text).replace("(", "").replace(")", "").split(",") if p.strip()]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise bad("integers separated by commas, e.g. 3, 3") from None
        if not values:
            raise bad("at least one integer")
        return tuple(values)
    # text: a Python literal when it parses as one (numbers, tuples), else the string itself
    try:
        return ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        return str(text)


def parse_values(
    config: dict[str, Any], raw_values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse every raw field; return (changed config values, {field: error message}).

    Only values that differ from ``config`` are returned, so an Apply that changes nothing
    does not edit the model.
    """
    specs = {s["name"]: s for s in field_specs(config)}
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in raw_values.items():
        if name not in specs:
            errors[name] = f"{name}: not an editable field; editable: {sorted(specs)}"
            continue
        try:
            value = parse_field(specs[name], raw)
        except ConfigError as exc:
            errors[name] = str(exc)
            continue
        old = config.get(name)
        same = list(old) == list(value) if isinstance(old, (list, tuple)) and isinstance(
            value, (list, tuple)) else old == value and type(old) is type(value)  # fmt: skip
        if not same:
            changes[name] = value
    return changes, errors


def guess_field(message: str, candidates: list[str]) -> str | None:
    """The field an error message is about: the only candidate, or the first one it names."""
    if len(candidates) == 1:
        return candidates[0]
    for name in candidates:
        if name in message:
            return name
    return None
