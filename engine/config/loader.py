"""Read a TOML or YAML pipeline file into a plain tree plus the position of every key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.config.positions import Path_, PositionMap, scan_toml_positions
from engine.errors import ConfigError, Diagnostic

__all__ = ["Document", "load_document", "parse_document"]

_TOML_ERR_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass
class Document:
    """A parsed pipeline file: its tree (strings not yet interpolated) and key positions."""

    path: Path | None
    text: str
    tree: dict[str, Any]
    positions: PositionMap

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "<pipeline>"

    def where(self, path: Path_) -> tuple[int | None, int | None]:
        return self.positions.locate(path)

    def diagnostic(
        self, code: str, message: str, path: Path_, hint: str | None = None
    ) -> Diagnostic:
        line, col = self.where(path)
        return Diagnostic(code, message, self.name, line, col, hint)


def load_document(path: str | Path) -> Document:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Diagnostic("E001", f"no such file: {p}", str(p))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Diagnostic("E001", f"cannot read {p}: {exc}", str(p))]) from None
    fmt = "yaml" if p.suffix.lower() in (".yaml", ".yml") else "toml"
    return parse_document(text, fmt=fmt, path=p)


def parse_document(text: str, *, fmt: str = "toml", path: Path | None = None) -> Document:
    name = str(path) if path else "<pipeline>"
    if fmt == "yaml":
        tree, positions = _parse_yaml(text, name)
    else:
        tree, positions = _parse_toml(text, name)
    return Document(path, text, tree, positions)


def _parse_toml(text: str, name: str) -> tuple[dict[str, Any], PositionMap]:
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_ERR_POS.search(msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        reason = _TOML_ERR_POS.sub("", msg).strip()
        raise ConfigError(
            [Diagnostic("E002", f"invalid TOML: {reason}", name, line, col)]
        ) from None
    return tree, scan_toml_positions(text, name)


def _parse_yaml(text: str, name: str) -> tuple[dict[str, Any], PositionMap]:
    positions = PositionMap(name)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return {}, positions
        problems: list[Diagnostic] = []
        _walk_yaml(node, (), positions, problems, name)
        if problems:
            raise ConfigError(problems)
        tree = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        reason = exc.problem or exc.context or "syntax error"
        raise ConfigError(
            [Diagnostic("E002", f"invalid YAML: {reason}", name, line, col)]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Diagnostic("E002", f"invalid YAML: {exc}", name)]) from None
    if not isinstance(tree, dict):
        raise ConfigError(
            [Diagnostic("E002", "a pipeline file must be a mapping at the top", name, 1, 1)]
        )
    return tree, positions


def _walk_yaml(
    node: yaml.Node, path: Path_, out: PositionMap, problems: list[Diagnostic], name: str
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key in seen:
                problems.append(Diagnostic("E003", f"duplicate key {key!r}", name, line, col))
            seen.add(key)
            out.add((*path, key), line, col)
            _walk_yaml(value_node, (*path, key), out, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.add((*path, i), item.start_mark.line + 1, item.start_mark.column + 1)
            _walk_yaml(item, (*path, i), out, problems, name)
