"""What a raw spec (a mapping from YAML or from Python) may hold, checked before any section
is parsed, hashed or serialised: plain JSON-like values only (str, int, float, bool, None,
lists, mappings), nested at most :data:`MAX_DEPTH` deep, at most :data:`MAX_NODES` values,
integers below 10**20, and strings that can be written as UTF-8 (no lone surrogates).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from automnist.errors import SpecError
from automnist.spec.yaml_reader import MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES

__all__ = ["check_plain"]

_INT_LIMIT = 10**MAX_INT_DIGITS
_TYPE_NAMES = {"date": "a date", "datetime": "a date", "bytes": "binary data", "set": "a set", "frozenset": "a set"}


def _check_string(text: str, source: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(source, path, f"text cannot be written as UTF-8: character U+{ord(text[exc.start]):04X} "
                                      f"at position {exc.start} (a lone surrogate)") from None


def check_plain(raw: Any, source: str) -> None:
    """Raise :class:`SpecError` naming the key path of the first value that is not plain.

    Works without recursion on shared references (YAML aliases) within the node limit.
    """
    count = 0
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError(source, "", f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise SpecError(source, path, f"nested more than {MAX_DEPTH} levels deep")
        if value is None or isinstance(value, bool) or type(value).__name__ == "bool_":
            continue
        if isinstance(value, numbers.Integral):
            if abs(int(value)) >= _INT_LIMIT:
                digits = int(int(value).bit_length() * 0.30103) + 1
                raise SpecError(source, path, f"integer too large: about {digits} digits, at most {MAX_INT_DIGITS}")
            continue
        if isinstance(value, numbers.Real):
            continue
        if isinstance(value, str):
            _check_string(value, source, path)
            continue
        if isinstance(value, Mapping):
            for key, child in value.items():
                if not isinstance(key, (str, int, bool)) and key is not None:
                    raise SpecError(source, path, f"a key must be a plain name, got {type(key).__name__}")
                if isinstance(key, str):
                    _check_string(key, source, f"{path}.<key>" if path else "<key>")
                name = str(key)[:40]
                stack.append((child, f"{path}.{name}" if path else name, depth + 1))
            continue
        if isinstance(value, (list, tuple)):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(value))
            continue
        what = _TYPE_NAMES.get(type(value).__name__, f"a {type(value).__name__}")
        raise SpecError(source, path, f"{what} is not allowed in a spec (only text, numbers, true/false, null, "
                                      "lists and mappings)")
