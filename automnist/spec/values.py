"""Hyperparameter values: type tests, frozen (hashable) YAML values, keys and labels."""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Mapping
from typing import Any

from automnist.records import plain_value

__all__ = ["freeze", "is_int", "is_number", "short_repr", "value_key", "value_label"]


def is_int(v: Any) -> bool:
    """Whether ``v`` is an integer (booleans are not)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """Whether ``v`` is a finite int or float (booleans are not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 10, 10, 10
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 80


def short_repr(v: Any, limit: int = 80) -> str:
    """``repr(v)`` cut to ``limit`` characters (error messages never print a huge value)."""
    text = _SHORT.repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def freeze(v: Any) -> Any:
    """Make a YAML value hashable and immutable: lists -> tuples, mappings -> frozen dicts.

    :func:`automnist.records.plain_value` turns it back into plain lists and dicts.
    """
    if isinstance(v, list):
        return tuple(freeze(x) for x in v)
    if isinstance(v, Mapping):
        return _FrozenDict({str(k): freeze(x) for k, x in v.items()})
    return v


class _FrozenDict(dict):  # a dict that hashes, so it can sit in a frozen dataclass
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _immutable(self, *a: Any, **k: Any) -> None:
        raise TypeError("spec values are immutable")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _immutable  # type: ignore[assignment]


def value_key(v: Any) -> str:
    """A canonical text of a value (JSON, sorted keys) to compare values by content."""
    return json.dumps(plain_value(v), sort_keys=True)


def value_label(v: Any) -> str:
    """A short, stable text for a hyperparameter value (tables, KT choice keys)."""
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return "-".join(value_label(x) for x in v)
    if isinstance(v, Mapping):
        return ",".join(f"{k}={value_label(x)}" for k, x in sorted(v.items())) or "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
