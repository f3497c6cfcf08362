"""Read a TOML or YAML pipeline file into a plain tree plus the position of every key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config.limits import MAX_DEPTH, too_deep
from engine.config.positions import Path_, PositionMap, scan_toml_positions
from engine.errors import ConfigError, Diagnostic, Severity

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
        self,
        code: str,
        message: str,
        path: Path_,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        """A finding at ``path``, or at the file's start when nothing along it is in the file."""
        line, col = self.where(path)
        if line is None:
            line, col = 1, 1
        return Diagnostic(code, message, self.name, line, col, hint, severity)


def load_document(path: str | Path) -> Document:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Diagnostic("E001", f"no such file: {p}", str(p))]) from None
    except OSError as exc:
        raise ConfigError([Diagnostic("E001", f"cannot read {p}: {exc}", str(p))]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        message = f"not UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start}"
        raise ConfigError([Diagnostic("E001", message, str(p), line, column)]) from None
    fmt = "yaml" if p.suffix.lower() in (".yaml", ".yml") else "toml"
    return parse_document(text, fmt=fmt, path=p)


def parse_document(text: str, *, fmt: str = "toml", path: Path | None = None) -> Document:
    name = str(path) if path else "<pipeline>"
    if fmt == "yaml":
        from engine.config.yaml12 import parse_yaml  # PyYAML only for YAML files

        tree, positions = parse_yaml(text, name)
    else:
        tree, positions = _parse_toml(text, name)
    return Document(path, text, tree, positions)


def _parse_toml(text: str, name: str) -> tuple[dict[str, Any], PositionMap]:
    _check_toml_depth(text, name)
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_ERR_POS.search(msg)
        if m:
            line, col = int(m.group(1)), int(m.group(2))
        else:  # "(at end of document)"
            line = text.count("\n") + 1
            col = len(text) - text.rfind("\n")
        reason = _TOML_ERR_POS.sub("", msg).replace("(at end of document)", "at the end").strip()
        raise ConfigError(
            [Diagnostic("E002", f"invalid TOML: {reason}", name, line, col)]
        ) from None
    return tree, scan_toml_positions(text, name)


def _check_toml_depth(text: str, name: str) -> None:
    """Refuse arrays and inline tables nested past ``MAX_DEPTH`` before tomllib recurses."""
    depth = 0
    line, line_start = 1, 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, line_start = line + 1, i + 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else ch
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                if text[i] == "\\" and ch == '"':
                    i += 1  # the escaped character; a newline is counted below
                if i < n and text[i] == "\n":
                    if len(quote) == 1:
                        break  # an unterminated string: the newline ends it
                    line, line_start = line + 1, i + 1
                i += 1
            else:
                i += len(quote)
            continue
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise too_deep(name, line, i - line_start + 1)
        elif ch in "]}":
            depth = max(depth - 1, 0)
        i += 1
