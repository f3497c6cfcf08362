"""Property: whatever text a pipeline file holds, loading, validating and compiling it ends in a
valid plan or in EngineErrors that each name the file and a line; never a crash, a
RecursionError or a hang. Examples are derandomized, so CI runs the same ones every time."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config.compile import compile_text
from engine.errors import ConfigError, EngineError
from engine.graph.preflight import preflight

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(
    p
    for d in ("pipelines", "examples")
    for p in (ROOT / d).glob("*")
    if p.suffix in (".toml", ".yaml", ".yml")
)
TEXTS = [
    (p.read_text(encoding="utf-8"), "yaml" if p.suffix != ".toml" else "toml") for p in BUNDLED
]
NAME = {"toml": ROOT / "fuzz" / "pipeline.toml", "yaml": ROOT / "fuzz" / "pipeline.yaml"}

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: fragments that have broken config loaders: syntax, YAML 1.1 words, aliases, nesting,
#: interpolation, odd numbers and characters
TOKENS = [
    "[",
    "]",
    "{",
    "}",
    "=",
    ":",
    ",",
    ".",
    "-",
    "#",
    '"',
    "'",
    '"""',
    "'''",
    "\n",
    "\t",
    " ",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!!python/object ",
    "? ",
    "NO",
    "on",
    "yes",
    "~",
    "${env:NOPE}",
    "${file:nope}",
    "${",
    "$${",
    "[[tests]]",
    "[sources.x]",
    'type = "x"',
    'inputs = ["nosuch"]',
    "1e400",
    "nan",
    "-inf",
    "0x1F",
    "9" * 5000,
    "\x00",
    "\ufeff",
    "é",
    "\\u0000",
    "{a = " * 300,
    "[" * 300,
    "a: " * 10,
    "- " * 100,
]


def check(text: str, fmt: str) -> None:
    """Load, validate, compile and preflight; only located EngineErrors may escape."""
    name = NAME[fmt]
    try:
        plan = compile_text(text, fmt=fmt, env={}, path=name)
        for warning in [*plan.warnings, *preflight(plan)]:
            assert warning.file == str(name) and warning.line is not None, warning
    except ConfigError as exc:
        assert exc.errors, "a ConfigError must hold an error"
        for diag in exc.diagnostics:
            assert diag.code and diag.message
            assert diag.file == str(name), diag
            assert diag.line is not None and diag.line >= 1, diag
    except EngineError as exc:  # pragma: no cover - none is expected, but it would be allowed
        assert str(exc)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    text, fmt = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "swap"]))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS) | st.text(max_size=8)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "replace":
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
        else:
            lines = text.splitlines(keepends=True) or [""]
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "duplicate":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text, fmt


@settings(FUZZ, max_examples=400)
@given(mutated())
def test_mutated_bundled_pipelines(case: tuple[str, str]) -> None:
    check(*case)


KEYS = st.sampled_from(
    [
        "pipeline",
        "name",
        "sources",
        "transforms",
        "sinks",
        "type",
        "path",
        "inputs",
        "codec",
        "fields",
        "expr",
        "condition",
        "routes",
        "on_error",
        "retry",
        "batch",
        "url",
        "table",
        "query",
        "dead_letter",
        "max_rejected",
        "audit",
        "tests",
        "records",
        "expect",
        "on",
        "NO",
        "file",
        "map",
        "filter",
        "csv",
        "json",
        "a",
        "x-y",
        "",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["file", "map", "csv", "in.csv", "out.jsonl", "${env:X}", "a > `1`", "5%"])
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
DOCUMENTS = st.dictionaries(
    st.sampled_from(["pipeline", "sources", "transforms", "sinks", "dead_letter", "tests", "x"]),
    TREES,
    max_size=5,
)


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def to_toml(doc: dict[str, Any]) -> str:
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"[{json.dumps(key)}]")
            lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        else:
            lines.insert(0, f"{json.dumps(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(DOCUMENTS, st.sampled_from(["toml", "yaml"]))
def test_generated_documents(doc: dict[str, Any], fmt: str) -> None:
    text = to_toml(doc) if fmt == "toml" else yaml.safe_dump(doc, allow_unicode=True)
    check(text, fmt)


@FUZZ
@given(st.text(max_size=300), st.sampled_from(["toml", "yaml"]))
def test_arbitrary_text(text: str, fmt: str) -> None:
    check(text, fmt)


@settings(FUZZ, max_examples=12)
@given(st.integers(1, 6), st.integers(2, 12), st.sampled_from(["list", "map", "self"]))
def test_alias_expansion_is_bounded(depth: int, width: int, shape: str) -> None:
    lines = ["pipeline: {name: x}", "l0: &l0 [lol]"]
    for level in range(1, depth + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        pairs = ", ".join(f"k{i}: *l{level - 1}" for i in range(width))
        lines.append(
            f"l{level}: &l{level} [{refs}]"
            if shape == "list"
            else f"l{level}: &l{level} {{{pairs}}}"
        )
    if shape == "self":
        lines.append("loop: &me {inner: [*me]}")
    check("\n".join(lines) + "\n", "yaml")


def test_bundled_pipelines_are_the_seeds() -> None:
    assert len(TEXTS) >= 5
    assert all(re.search(r"\[?pipeline\]?", text) for text, _ in TEXTS)
