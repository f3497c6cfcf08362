"""``${env:NAME}``, ``${env:NAME:-default}``, ``${file:path}`` and ``${secret:NAME:key}`` in
string values only.

Interpolation runs after parsing, so a value can never inject structure into the file.
``$${`` stands for a literal ``${``. A value with a newline is refused, except in a field that
takes a key or certificate (the caller tells which). ``${secret:...}`` is resolved by the
backend ``ENGINE_SECRETS_BACKEND`` names (:mod:`engine.secrets`). No message carries a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config.loader import Document
from engine.config.positions import Path_
from engine.errors import Diagnostic, SettingsError
from engine.secrets import SecretResolver, SecretsContext, SecretsError, open_resolver
from engine.settings import EngineSettings
from engine.workspace import workspace_for

__all__ = ["REFERENCE_PATTERN", "Interpolated", "Resolved", "interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR = re.compile(r"^(env|file):(.+?)(?::-(.*))?$", re.DOTALL)
_SECRET = re.compile(r"^secret:([^:]+):(.+)$", re.DOTALL)
#: a string holding at least one reference (JSON Schema ``pattern``: searched, not anchored)
REFERENCE_PATTERN = r"\$\{(env|file|secret):[^}]+\}"
_FORMS = "${env:NAME}, ${env:NAME:-default}, ${file:path} or ${secret:NAME:key}"


@dataclass(frozen=True)
class Resolved:
    """One reference replaced: where, by which kind (env, file, secret), and the value."""

    path: Path_
    kind: str
    value: str


@dataclass
class Interpolated:
    """The tree with every reference replaced, the problems found, and what was put in."""

    tree: dict[str, Any]
    problems: list[Diagnostic] = field(default_factory=list)
    resolved: list[Resolved] = field(default_factory=list)


def interpolate(
    doc: Document,
    env: Mapping[str, str] | None = None,
    *,
    multiline: Callable[[Path_], bool] = lambda path: False,
    secrets: Callable[[], SecretResolver] | None = None,
) -> Interpolated:
    """Replace every reference in ``doc``'s string values. ``multiline(path)`` says whether
    the field at ``path`` may take several lines; ``secrets`` opens the secrets backend
    (default: the one the environment names, in the pipeline's workspace)."""
    environ = os.environ if env is None else env
    base = doc.path.parent if doc.path else Path.cwd()
    out = Interpolated({})
    opener = secrets or (lambda: _default_resolver(doc, environ))
    backend: list[SecretResolver | SecretsError] = []  # opened at the first ${secret:...}

    def problem(code: str, message: str, path: Path_, hint: str | None = None) -> str:
        out.problems.append(doc.diagnostic(code, message, path, hint))
        return ""

    def read_env(name: str, default: str | None, path: Path_) -> tuple[str | None, str]:
        found = environ.get(name)
        if found is None and default is not None:
            return default, f"the default of {name}"
        if found is None:
            problem(
                "E011",
                f"environment variable {name} is not set (used in {_dotted(path)})",
                path,
                f"export {name}=..., write ${{env:{name}:-default}} or pass --env-file",
            )
        return found, f"environment variable {name}"

    def read_file(name: str, path: Path_) -> tuple[str | None, str]:
        file = Path(name).expanduser()
        file = file if file.is_absolute() else base / file
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            problem(
                "E012",
                f"cannot read file {file} (used in {_dotted(path)})",
                path,
                "paths are relative to the pipeline file's folder",
            )
            return None, ""
        if text.endswith("\n"):
            text = text[:-1].removesuffix("\r")
        return text, f"file {file}"

    def read_secret(name: str, key: str, path: Path_) -> tuple[str | None, str]:
        if not backend:
            try:
                backend.append(opener())
            except SecretsError as exc:
                backend.append(exc)
        resolver = backend[0]
        try:
            if isinstance(resolver, SecretsError):
                raise resolver
            found = resolver.get(name, key)
        except SecretsError as exc:
            problem("E015", f"cannot read secret {name}:{key} ({_dotted(path)}): {exc}", path)
            return None, ""
        if found is None:
            problem(
                "E014",
                f"secret {name}:{key} is not set (used in {_dotted(path)})",
                path,
                f"engine secrets set {name} {key} < value-file",
            )
        return found, f"secret {name}:{key}"

    def sub(value: str, path: Path_) -> str:
        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            body = m.group(1)
            var, secret = _VAR.match(body), _SECRET.match(body)
            if "${" in body or not (var or secret):
                return problem(
                    "E010", f"cannot read reference '${{{body}}}' in {_dotted(path)}", path, _FORMS
                )
            if secret:
                kind = "secret"
                text, origin = read_secret(secret.group(1), secret.group(2), path)
            elif var and var.group(1) == "env":
                kind = "env"
                text, origin = read_env(var.group(2), var.group(3), path)
            else:
                assert var is not None
                kind = "file"
                text, origin = read_file(var.group(2), path)
            if text is None:
                return ""
            if ("\n" in text or "\r" in text) and not multiline(path):
                return problem(
                    "E013",
                    f"{origin} holds a newline; refused in {_dotted(path)}",
                    path,
                    "only fields that take a key or certificate accept several lines",
                )
            out.resolved.append(Resolved(path, kind, text))
            return text

        result = _TOKEN.sub(repl, value)
        leftover = _TOKEN.sub("", value)
        if "${" in leftover:
            problem(
                "E010",
                f"unclosed reference '${{' in {_dotted(path)}",
                path,
                "close it with } or write $${ for a literal ${",
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

    out.tree = walk(doc.tree, ())
    return out


def _default_resolver(doc: Document, environ: Mapping[str, str]) -> SecretResolver:
    try:
        settings = EngineSettings.load(environ)
    except SettingsError as exc:
        raise SecretsError("; ".join(exc.problems)) from None
    workspace = workspace_for(doc.path, settings)
    return open_resolver(SecretsContext(workspace, settings, environ))


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)
