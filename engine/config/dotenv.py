"""Read a dotenv file (``--env-file``): ``KEY=value`` lines for ``${env:...}`` and settings.

The syntax is the common one: blank lines and ``#`` comments, an optional ``export``, values
bare (an inline comment after a space is dropped), single-quoted (literal) or double-quoted
(``\\n``, ``\\t``, ``\\"``, ``\\\\`` escapes); a quoted value may span lines. Nothing is
expanded. A line that is none of these is an error naming the file and line, never a value.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import ConfigError, Diagnostic

__all__ = ["parse_env_text", "read_env_file"]

_ASSIGN = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_env_file(path: str | Path) -> dict[str, str]:
    """The variables of the dotenv file at ``path``; ConfigError (E016) when it cannot be read
    or a line does not parse."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        raise ConfigError([Diagnostic("E016", f"cannot read env file: {reason}", str(p))]) from None
    return parse_env_text(text, str(p))


def parse_env_text(text: str, name: str = "<env>") -> dict[str, str]:
    values: dict[str, str] = {}
    problems: list[Diagnostic] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ASSIGN.match(line)
        if m is None:
            problems.append(_bad(name, number, 1, "expected KEY=value"))
            continue
        key, rest, column = m.group(1), line[m.end() :], m.end() + 1
        if not rest.startswith(("'", '"')):
            values[key] = re.split(r"\s#", rest, maxsplit=1)[0].strip()
            continue
        quote, body = rest[0], rest[1:]
        while (end := _closing(body, quote)) < 0 and i < len(lines):
            body += "\n" + lines[i]
            i += 1
        if end < 0:
            problems.append(_bad(name, number, column, f"{key}: the {quote} is never closed"))
            continue
        tail = body[end + 1 :].strip()
        if tail and not tail.startswith("#"):
            problems.append(_bad(name, number, column, f"{key}: text after the closing {quote}"))
            continue
        value = body[:end]
        values[key] = _unescape(value) if quote == '"' else value
    if problems:
        raise ConfigError(problems)
    return values


def _closing(body: str, quote: str) -> int:
    """Index of the quote that closes ``body``, or -1."""
    i = 0
    while i < len(body):
        if body[i] == "\\" and quote == '"':
            i += 2
            continue
        if body[i] == quote:
            return i
        i += 1
    return -1


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value, flags=re.DOTALL)


def _bad(name: str, line: int, column: int, message: str) -> Diagnostic:
    return Diagnostic(
        "E016",
        f"env file: {message}",
        name,
        line,
        column,
        "write KEY=value, KEY='value' or KEY=\"value\" (# starts a comment)",
    )
