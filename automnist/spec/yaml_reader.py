"""Read a spec file's YAML with bounded work: size, depth, aliases and node count are
checked on the composed node graph BEFORE any value is constructed or expanded.

A "billion laughs" file (aliases of aliases) composes into a small graph that would
expand to billions of values; here the expanded size is counted on the graph (each node
once, memoised) and refused past :data:`MAX_NODES`.  Nesting is refused past
:data:`MAX_DEPTH` while composing, so PyYAML's recursive composer never nears Python's
recursion limit.  Values YAML would turn into something other than plain JSON values
(dates, ``!!binary``, ``!!set``), duplicate keys (the first would be silently dropped) and
integers too long to be a setting are refused with the key path.  Every problem raises
:class:`~automnist.errors.SpecError` with one line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from automnist.errors import SpecError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "read_yaml"]

#: Largest spec file read (the real specs are 1-3 KB).
MAX_BYTES = 256_000
#: Deepest nesting of mappings and lists (the real specs nest 4 deep).
MAX_DEPTH = 32
#: Most values, while composing and after expanding aliases (the real specs have about 100).
MAX_NODES = 5_000
#: Most alias references (``*name``) in one file.
MAX_ALIASES = 500
#: Longest integer literal, in digits (a seed is at most 10; 10**20 is no setting).
MAX_INT_DIGITS = 20

_PLAIN_TAGS = frozenset({
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:merge",
})  # fmt: skip
_TAG_NAMES = {"tag:yaml.org,2002:timestamp": "a date", "tag:yaml.org,2002:binary": "!!binary data",
              "tag:yaml.org,2002:set": "a !!set", "tag:yaml.org,2002:omap": "an !!omap",
              "tag:yaml.org,2002:pairs": "!!pairs"}


class _Limit(Exception):
    """A bound was hit while composing (turned into a SpecError by :func:`read_yaml`)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts depth and alias references as it goes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Limit(_line(self.peek_event()), f"more than {MAX_ALIASES} alias references (*name)")
            return super().compose_node(parent, index)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Limit(_line(self.peek_event()), f"more than {MAX_NODES} values")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Limit(_line(self.peek_event()), f"nested more than {MAX_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line(event_or_node: Any) -> str:
    mark = getattr(event_or_node, "start_mark", None)
    return f"line {mark.line + 1}" if mark is not None else ""


def _decode(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        text = data
    else:
        if len(data) > MAX_BYTES:
            raise SpecError(source, "", f"file too large for a spec: more than {MAX_BYTES} bytes")
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise SpecError(source, f"line {line}",
                            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                            f"(save the file as UTF-8)") from None
    if len(text) > MAX_BYTES:
        raise SpecError(source, "", f"text too large for a spec: {len(text)} characters, at most {MAX_BYTES}")
    if "\x00" in text:
        raise SpecError(source, f"line {text[: text.index(chr(0))].count(chr(10)) + 1}",
                        "not a text file: contains a NUL byte")
    return text


_COMMENT = re.compile(r"(^|\s)#[^\n]*")
_BRACKET = re.compile(r"[\[\]{}]")


def _check_flow_depth(text: str, source: str) -> None:
    """Refuse flow nesting (``[[[...`` / ``{{{...``) past :data:`MAX_DEPTH` before PyYAML sees it:
    its scanner looks ahead over every open bracket, so 10**5 of them would take hours."""
    depth = 0
    for match in _BRACKET.finditer(_COMMENT.sub(" ", text)):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_DEPTH:
            line = text[: match.start()].count("\n") + 1
            raise SpecError(source, f"line {line}", f"nested more than {MAX_DEPTH} levels deep")


def _expanded_size(root: Node, source: str) -> int:
    """Values the graph expands to (aliases counted at every use), each node visited once."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError(source, _line(node), "an alias refers to a value that contains it (a cycle)")
        active.add(key)
        if isinstance(node, SequenceNode):
            total = 1 + sum(size(n) for n in node.value)
        elif isinstance(node, MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        active.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root)


def _key_text(node: Node) -> str:
    return str(node.value)[:40] if isinstance(node, ScalarNode) else "?"


def _check_nodes(node: Node, path: str, source: str) -> None:
    """Tags, duplicate keys and integer lengths, with the key path (the graph is bounded here)."""
    where = path or _line(node)
    tag = node.tag
    if tag not in _PLAIN_TAGS:
        what = _TAG_NAMES.get(tag, f"a value tagged {tag[:40]}")
        raise SpecError(source, where, f"{what} is not allowed in a spec (quote it to make it a string)")
    if isinstance(node, ScalarNode):
        if tag == "tag:yaml.org,2002:int":
            digits = sum(c.isdigit() for c in node.value)
            if digits > MAX_INT_DIGITS:
                raise SpecError(source, where, f"integer too large: {digits} digits, at most {MAX_INT_DIGITS}")
        return
    if isinstance(node, SequenceNode):
        for i, child in enumerate(node.value):
            _check_nodes(child, f"{path}[{i}]", source)
        return
    seen: set[str] = set()
    for key, value in node.value:
        if key.tag == "tag:yaml.org,2002:merge":
            _check_nodes(value, path, source)
            continue
        name = _key_text(key)
        child = f"{path}.{name}" if path else name
        if not isinstance(key, ScalarNode):
            raise SpecError(source, f"{path or _line(key)}", "a key must be a plain name, got a list or mapping")
        if key.value in seen:
            raise SpecError(source, child, "duplicate key (the first value would be silently ignored)")
        seen.add(key.value)
        _check_nodes(key, child, source)
        _check_nodes(value, child, source)


def read_yaml(data: bytes | str, source: str) -> Any:
    """Parse one YAML document of a spec with bounded work.

    Parameters
    ----------
    data : bytes or str
        The file's bytes (UTF-8, an optional BOM) or text.
    source : str
        Named in error messages.

    Returns
    -------
    Any
        The document's value (None for an empty document).

    Raises
    ------
    SpecError
        Not UTF-8, too large, invalid YAML, nested past :data:`MAX_DEPTH`, more than
        :data:`MAX_NODES` values after expanding aliases, a cycle, a date / binary / set
        value, a duplicate key or an overlong integer.
    """
    text = _decode(data, source)
    _check_flow_depth(text, source)
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters at once
    except yaml.YAMLError as exc:
        raise SpecError(source, _where(exc), f"invalid YAML: {_problem(exc)}") from None
    try:
        try:
            root = loader.get_single_node()
        except _Limit as exc:
            raise SpecError(source, exc.where, str(exc)) from None
        except yaml.YAMLError as exc:
            raise SpecError(source, _where(exc), f"invalid YAML: {_problem(exc)}") from None
        except RecursionError:  # not reached with MAX_DEPTH; kept so no traceback can escape
            raise SpecError(source, "", f"nested more than {MAX_DEPTH} levels deep") from None
        if root is None:
            return None
        if _expanded_size(root, source) > MAX_NODES:
            raise SpecError(source, "", f"more than {MAX_NODES} values once aliases are expanded "
                                        "(an alias bomb?)")
        _check_nodes(root, "", source)
        try:
            return loader.construct_document(root)
        except yaml.YAMLError as exc:
            raise SpecError(source, _where(exc) or _line(root), f"invalid YAML: {_problem(exc)}") from None
        except ValueError as exc:  # a value PyYAML's constructors cannot convert
            raise SpecError(source, "", f"invalid YAML value: {str(exc)[:120]}") from None
    finally:
        loader.dispose()


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is None and isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.position}"
    return f"line {mark.line + 1}" if mark is not None else ""


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character #x{exc.character:04x} is not allowed"
    return getattr(exc, "problem", None) or str(exc).splitlines()[0]
