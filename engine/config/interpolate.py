"""``${env:NAME}``, ``${env:NAME:-default}`` and ``${file:path}`` in string values only.

Interpolation runs after parsing, so a value can never inject structure into the file.
``$${`` stands for a literal ``${``. A value with a newline is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.config.loader import Document
from engine.config.positions import Path_
from engine.errors import Diagnostic

__all__ = ["interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR = re.compile(r"^(env|file):(.+?)(?::-(.*))?$", re.DOTALL)


def interpolate(
    doc: Document, env: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[Diagnostic], set[Path_]]:
    """The tree with every reference replaced, the problems found, and the paths holding secrets."""
    environ = os.environ if env is None else env
    base = doc.path.parent if doc.path else Path.cwd()
    problems: list[Diagnostic] = []
    secret_paths: set[Path_] = set()

    def sub(value: str, path: Path_) -> str:
        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            body = m.group(1)
            var = _VAR.match(body)
            if not var or "${" in body:
                problems.append(
                    doc.diagnostic(
                        "E010",
                        f"cannot read reference '${{{body}}}' in {_dotted(path)}",
                        path,
                        "use ${env:NAME}, ${env:NAME:-default} or ${file:path}",
                    )
                )
                return ""
            kind, name, default = var.group(1), var.group(2), var.group(3)
            secret_paths.add(path)
            if kind == "env":
                found = environ.get(name)
                origin = f"environment variable {name}"
                if found is None and default is not None:
                    found, origin = default, f"the default of {name}"
                if found is None:
                    problems.append(
                        doc.diagnostic(
                            "E011",
                            f"environment variable {name} is not set (used in {_dotted(path)})",
                            path,
                            f"export {name}=... or write ${{env:{name}:-default}}",
                        )
                    )
                    return ""
                text = found
            else:
                file = Path(name).expanduser()
                file = file if file.is_absolute() else base / file
                try:
                    text = file.read_text(encoding="utf-8")
                except OSError:
                    problems.append(
                        doc.diagnostic(
                            "E012",
                            f"cannot read file {file} (used in {_dotted(path)})",
                            path,
                            "paths are relative to the pipeline file's folder",
                        )
                    )
                    return ""
                if text.endswith("\n"):
                    text = text[:-1].removesuffix("\r")
                origin = f"file {file}"
            if "\n" in text or "\r" in text:
                problems.append(
                    doc.diagnostic(
                        "E013",
                        f"{origin} holds a newline; refused in {_dotted(path)}",
                        path,
                        "interpolated values must be a single line",
                    )
                )
                return ""
            return text

        result = _TOKEN.sub(repl, value)
        leftover = _TOKEN.sub("", value)
        if "${" in leftover:
            problems.append(
                doc.diagnostic(
                    "E010",
                    f"unclosed reference '${{' in {_dotted(path)}",
                    path,
                    "close it with } or write $${ for a literal ${",
                )
            )
        return result

    def walk(node: Any, path: Path_) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return sub(node, path)
        return node

    tree = walk(doc.tree, ())
    return tree, problems, secret_paths


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)
