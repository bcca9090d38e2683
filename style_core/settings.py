"""Settings from strangers: the app's "Other engine settings (JSON)" field and its named parameters, checked before
they reach a StyleConfig, so every mistake is one line naming the setting, never a traceback.

Settings that name the server's files or hardware (`weights`, `weights_source`, `device`, ...) belong to the command
line and the server's own flags: a page or API client may not set them. Settings that have a named parameter of
their own are refused here too (two values for one setting), and so is anything over the server's caps.
"""

from __future__ import annotations

import json
import math
import types
import typing
from typing import Any

from .config import ConfigError, StyleConfig

# The command line's and the server's own: a file path on the server, a download source, the hardware.
SERVER_ONLY = frozenset({"weights", "weights_source", "device", "autocast", "cuda_graphs", "cuda_graph_update"})
MAX_ITEMS = 16  # the longest list a setting takes (style layers, their weights)


def parse_extra(text: str | None, named: dict[str, str], caps: dict[str, float]) -> dict[str, Any]:
    """The JSON object in `text` as StyleConfig overrides, each value checked against its field's type.

    `named`: setting -> the parameter that sets it (refused here); `caps`: setting -> the server's maximum."""
    if text is None or not str(text).strip():
        return {}
    if not isinstance(text, str):
        raise ConfigError("other settings must be JSON text")
    try:
        extra = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"other settings are not valid JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise ConfigError('other settings must be a JSON object, e.g. {"tv_weight": 20}')
    hints = typing.get_type_hints(StyleConfig)
    checked = {}
    for key, value in extra.items():
        if key in SERVER_ONLY:
            raise ConfigError(f"'{key}' is set by the server's own flags, not from the page or the API")
        if key in named:
            raise ConfigError(f"'{key}' has its own parameter ({named[key]}): set it there, not in other settings")
        if key not in hints:
            raise ConfigError(f"unknown setting '{key}' (see python -m style_core --help)")
        checked[key] = coerce(key, value, hints[key])
        cap = caps.get(key)
        if cap is not None and checked[key] is not None and checked[key] > cap:
            raise ConfigError(f"'{key}' is limited to {cap:g} on this server (got {checked[key]:g})")
    return checked


def _no_constant(name: str) -> None:
    raise ConfigError(f"other settings: {name} is not a number")


def coerce(name: str, value: Any, hint: Any) -> Any:
    """`value` as the type `hint` names (int, float, bool, str, tuple of one of those, optionally None)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"'{name}' cannot be null")
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
            raise ConfigError(f"'{name}' must be a list of 1 to {MAX_ITEMS} values")
        return tuple(coerce(name, v, typing.get_args(hint)[0]) for v in value)
    return scalar(name, value, hint)


def scalar(name: str, value: Any, kind: type) -> Any:
    """One value of type `kind`; numbers must be finite, whole numbers whole."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{name}' must be true or false (got {_show(value)})")
    if kind is str:
        if isinstance(value, str) and len(value) <= 64:
            return value
        raise ConfigError(f"'{name}' must be a short text (got {_show(value)})")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"'{name}' must be a finite number (got {_show(value)})")
    if kind is int:
        if float(value) != int(value):
            raise ConfigError(f"'{name}' must be a whole number (got {_show(value)})")
        return int(value)
    return float(value)


def number(name: str, value: Any, low: float, high: float, whole: bool = False) -> float | int:
    """A named parameter's number, in [low, high]; strings of digits from loose clients are taken too."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number (got {_show(value)})") from None
    value = scalar(name, value, int if whole else float)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} (got {value:g})")
    return value


def _show(value: Any) -> str:
    try:
        text = json.dumps(value) if not isinstance(value, float) else repr(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
