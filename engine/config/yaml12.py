"""Read a YAML pipeline file with YAML 1.2 core-schema semantics, bounded in depth and size.

PyYAML implements YAML 1.1, where ``NO`` is false and ``on:`` is a boolean key. Pipeline files
are read as Vector and Redpanda Connect read theirs: plain scalars resolve by the 1.2 core
schema only (null, true/false, integers, floats), everything else is a string, and keys are
always strings. Aliases are expanded by this reader, never by PyYAML's constructor, so a
self-referencing alias is a located error and a "billion laughs" file is refused as soon as the
expanded tree passes a small bound.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from engine.config.limits import MAX_DEPTH, MAX_NODES, too_deep
from engine.config.positions import Path_, PositionMap
from engine.errors import ConfigError, Diagnostic

__all__ = ["parse_yaml"]

_MAX_INT_DIGITS = 4000  # Python refuses to parse longer integers

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


_PLAIN = "tag:engine,2026:plain"


class _Loader(yaml.SafeLoader):
    """PyYAML's composer with no 1.1 implicit resolvers: this module resolves plain scalars."""


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(_PLAIN, re.compile(r"(?s).*"), None)


class _TooBig(Exception):
    def __init__(self, node: yaml.Node, message: str, code: str) -> None:
        self.node = node
        self.message = message
        self.code = code


def parse_yaml(text: str, name: str) -> tuple[dict[str, Any], PositionMap]:
    """The tree and key positions of a YAML pipeline file; every problem is a ConfigError."""
    positions = PositionMap(name)
    try:
        _check_depth(text, name)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        reason = exc.problem or exc.context or "syntax error"
        raise ConfigError(
            [Diagnostic("E002", f"invalid YAML: {reason}", name, line, col)]
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, unmarked
        at = min(exc.position, len(text))
        line = text.count("\n", 0, at) + 1
        column = at - text.rfind("\n", 0, at)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise ConfigError(
            [
                Diagnostic(
                    "E002",
                    f"invalid YAML: character U+{ord(char):04X} is not allowed",
                    name,
                    line,
                    column,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Diagnostic("E002", f"invalid YAML: {exc}", name, 1, 1)]) from None
    if node is None:
        return {}, positions
    builder = _Builder(name, positions)
    try:
        tree = builder.build(node, (), ())
    except _TooBig as exc:
        mark = exc.node.start_mark
        raise ConfigError(
            [Diagnostic(exc.code, exc.message, name, mark.line + 1, mark.column + 1)]
        ) from None
    if builder.problems:
        raise ConfigError(builder.problems)
    if not isinstance(tree, dict):
        raise ConfigError(
            [Diagnostic("E002", "a pipeline file must be a mapping at the top", name, 1, 1)]
        )
    return tree, positions


def _check_depth(text: str, name: str) -> None:
    """Refuse deep nesting from the event stream, before the recursive composer sees it."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise too_deep(name, *_where(event.start_mark))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Builder:
    """Builds plain Python values from composed nodes, expanding aliases with a budget."""

    def __init__(self, name: str, positions: PositionMap) -> None:
        self.name = name
        self.positions = positions
        self.problems: list[Diagnostic] = []
        self.count = 0

    def _diag(self, code: str, message: str, node: yaml.Node, hint: str | None = None) -> None:
        mark = node.start_mark
        self.problems.append(
            Diagnostic(code, message, self.name, mark.line + 1, mark.column + 1, hint)
        )

    def build(self, node: yaml.Node, path: Path_, open_nodes: tuple[int, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(
                node,
                f"the file expands to more than {MAX_NODES} values (aliases included)",
                "E005",
            )
        if id(node) in open_nodes:
            raise _TooBig(node, "an alias refers to a value that contains it", "E005")
        if len(open_nodes) > MAX_DEPTH:
            raise _TooBig(node, f"nesting deeper than {MAX_DEPTH} levels", "E004")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        inner = (*open_nodes, id(node))
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self._diag("E002", f"unsupported YAML tag {node.tag!r}", node)
            items = []
            for i, item in enumerate(node.value):
                self.positions.add((*path, i), item.start_mark.line + 1, item.start_mark.column + 1)
                items.append(self.build(item, (*path, i), inner))
            return items
        assert isinstance(node, yaml.MappingNode)
        if node.tag != _MAP:
            self._diag("E002", f"unsupported YAML tag {node.tag!r}", node)
        out: dict[str | int, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._diag("E002", "a key must be a plain string, not a list or a table", key_node)
                continue
            resolved = self._scalar(key_node)
            # keys resolve like values (YAML 1.2: `on` is a string, `1` an integer)
            key = resolved if isinstance(resolved, str | int) else str(key_node.value)
            if key in out:
                self._diag("E003", f"duplicate key {key!r}", key_node)
                continue
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            self.positions.add((*path, key), line, col)
            out[key] = self.build(value_node, (*path, key), inner)
        return out

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        text = str(node.value)
        tag = node.tag
        if tag == _PLAIN:
            tag = _resolve_plain(text)
        if tag == _STR:
            return text
        if tag == _NULL and _CORE_NULL.match(text):
            return None
        if tag == _BOOL and _CORE_BOOL.match(text):
            return text.lower() == "true"
        if tag == _INT and _CORE_INT.match(text) and len(text) <= _MAX_INT_DIGITS:
            return _int(text)
        if tag == _FLOAT and _CORE_FLOAT.match(text):
            return _float(text)
        if tag in (_NULL, _BOOL, _INT, _FLOAT):
            self._diag("E002", f"{text!r} is not a valid {tag.rsplit(':', 1)[-1]}", node)
        else:
            self._diag("E002", f"unsupported YAML tag {tag!r}", node)
        return text


def _where(mark: Any) -> tuple[int | None, int | None]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def _resolve_plain(text: str) -> str:
    if _CORE_NULL.match(text):
        return _NULL
    if _CORE_BOOL.match(text):
        return _BOOL
    if _CORE_INT.match(text) and len(text) <= _MAX_INT_DIGITS:
        return _INT
    if _CORE_FLOAT.match(text):
        return _FLOAT
    return _STR


def _int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".nan"):
        return math.nan
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    return float(text)
