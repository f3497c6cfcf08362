"""Where each key of a pipeline file stands: path -> (line, column), both 1-based.

``tomllib`` keeps no positions, so TOML files are scanned line by line for table
headers, keys and inline tables; YAML positions come from PyYAML's node marks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Path_", "PositionMap", "scan_toml_positions"]

Path_ = tuple[str | int, ...]

_BARE_KEY = r"[A-Za-z0-9_-]+"
_QUOTED_KEY = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY_PART = rf"(?:{_BARE_KEY}|{_QUOTED_KEY})"
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED_KEY})\s*\]\]?")
_KEY_LINE = re.compile(rf"^(\s*)({_DOTTED_KEY})\s*=")
_KEY_PART_RE = re.compile(_KEY_PART)


@dataclass
class PositionMap:
    """Positions of keys in one file; ``locate`` finds the nearest known ancestor."""

    file: str
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def add(self, path: Path_, line: int, column: int) -> None:
        self.keys.setdefault(path, (line, column))

    def locate(self, path: Sequence[str | int]) -> tuple[int | None, int | None]:
        p = tuple(path)
        while p:
            if p in self.keys:
                return self.keys[p]
            p = p[:-1]
        return (None, None)


def _split_key(text: str) -> list[str]:
    parts = []
    for m in _KEY_PART_RE.finditer(text):
        raw = m.group(0)
        if raw[0] in "\"'":
            raw = raw[1:-1]
        parts.append(raw)
    return parts


def _scan_inline_table(line: str, start: int, prefix: Path_, lineno: int, out: PositionMap) -> None:
    """Record the keys of an inline table ``{ a = 1, b = { c = 2 } }`` starting at ``start``."""
    stack: list[Path_] = [prefix]
    i = start
    expect_key = True
    last_key: Path_ | None = None
    in_str: str | None = None
    while i < len(line):
        ch = line[i]
        if in_str:
            if ch == "\\" and in_str == '"':
                i += 2
                continue
            if ch == in_str:
                in_str = None
            i += 1
            continue
        if ch in "\"'" and not expect_key:
            in_str = ch
        elif ch == "{":
            if last_key is not None:
                stack.append(last_key)
            expect_key = True
        elif ch == "}":
            if len(stack) > 1:
                stack.pop()
            else:
                return
        elif ch == ",":
            expect_key = True
        elif ch == "#":
            return
        elif expect_key and not ch.isspace():
            m = re.match(rf"({_DOTTED_KEY})\s*=", line[i:])
            if m:
                key = (*stack[-1], *_split_key(m.group(1)))
                out.add(key, lineno, i + 1)
                last_key = key
                i += m.end()
                expect_key = False
                continue
        i += 1


def _indexed(raw: Path_, array_counts: dict[Path_, int]) -> Path_:
    """A header's path with the current element of every array of tables along it."""
    built: Path_ = ()
    for part in raw:
        built = (*built, part)
        if built in array_counts:
            built = (*built, array_counts[built] - 1)
    return built


def scan_toml_positions(text: str, file: str) -> PositionMap:
    out = PositionMap(file)
    table: Path_ = ()
    array_counts: dict[Path_, int] = {}
    in_multiline: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            raw: Path_ = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                key = (*_indexed(raw[:-1], array_counts), raw[-1])
                index = array_counts.get(key, 0)
                array_counts[key] = index + 1
                out.add(key, lineno, header.start(2) + 1)
                path: Path_ = (*key, index)
            else:
                path = _indexed(raw, array_counts)
            out.add(path, lineno, header.start(2) + 1)
            table = path
            continue
        key_line = _KEY_LINE.match(line)
        if not key_line:
            continue
        key = (*table, *_split_key(key_line.group(2)))
        out.add(key, lineno, key_line.start(2) + 1)
        rest = line[key_line.end() :]
        stripped = rest.lstrip()
        for quote in ('"""', "'''"):
            if stripped.startswith(quote) and stripped.count(quote) == 1:
                in_multiline = quote
        if stripped.startswith("{"):
            _scan_inline_table(line, key_line.end() + (len(rest) - len(stripped)), key, lineno, out)
    return out
