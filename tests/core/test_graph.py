"""Compile: inputs resolved, cycles named, dead ends warned, expressions checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.compile import compile_text
from engine.errors import ConfigError, Severity
from engine.graph.render import to_dot, to_mermaid

HEAD = '[pipeline]\nname = "g"\n[sources.src]\ntype = "file"\npath = "in.jsonl"\n'


def plan_of(body: str):  # type: ignore[no-untyped-def]
    return compile_text(HEAD + body, env={}, path=Path("g.toml"))


def errors(body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        plan_of(body)
    return [f"{d.code}@{d.line}: {d.message} | {d.hint}" for d in info.value.errors]


def test_fan_out_fan_in_order() -> None:
    plan = plan_of(
        '[transforms.a]\ntype = "filter"\ninputs = ["src"]\ncondition = "x"\n'
        '[transforms.b]\ntype = "filter"\ninputs = ["src"]\ncondition = "y"\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["a", "b"]\n'
    )
    assert plan.order.index("src") < plan.order.index("a") < plan.order.index("out")
    assert plan.nodes["out"].inputs == (("a", None), ("b", None))
    assert plan.nodes["src"].consumers == {None: ["a", "b"]}


def test_unknown_input_did_you_mean() -> None:
    [e] = errors('[sinks.out]\ntype = "stdout"\ninputs = ["scr"]\n')
    assert e.startswith("E040@8") and "did you mean 'src'" in e


def test_cycle_is_named_as_a_chain() -> None:
    [e] = errors(
        '[transforms.a]\ntype = "filter"\ninputs = ["src", "b"]\ncondition = "x"\n'
        '[transforms.b]\ntype = "filter"\ninputs = ["a"]\ncondition = "x"\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["b"]\n'
    )
    assert "E042" in e
    assert "a -> b -> a" in e or "b -> a -> b" in e


def test_bad_expression_is_a_located_config_error() -> None:
    [e] = errors(
        '[transforms.a]\ntype = "filter"\ninputs = ["src"]\ncondition = "foo[?"\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["a"]\n'
    )
    assert e.startswith("E050@9") and "transforms" not in e.split("|")[0].split(":")[0]


def test_unknown_function_is_caught_at_compile_time() -> None:
    [e] = errors(
        '[transforms.a]\ntype = "map"\ninputs = ["src"]\nfields = { x = "nosuch(a)" }\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["a"]\n'
    )
    assert e.startswith("E050@9")


def test_route_outputs_are_inputs_and_unused_ones_warned() -> None:
    plan = plan_of(
        '[transforms.r]\ntype = "route"\ninputs = ["src"]\n'
        "routes = { eu = \"region == 'EU'\", us = \"region == 'US'\" }\n"
        '[sinks.eu]\ntype = "stdout"\ninputs = ["r.eu"]\n'
    )
    assert plan.nodes["eu"].inputs == (("r", "eu"),)
    warned = [d.message for d in plan.warnings if d.severity is Severity.WARNING]
    assert any("r.us" in w for w in warned)


def test_unknown_route_output() -> None:
    [e] = errors(
        '[transforms.r]\ntype = "route"\ninputs = ["src"]\nroutes = { eu = "a" }\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["r.us"]\n'
    )
    assert "has no output 'us'" in e


def test_dead_end_is_a_warning() -> None:
    plan = plan_of(
        '[transforms.a]\ntype = "filter"\ninputs = ["src"]\ncondition = "x"\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["src"]\n'
    )
    [w] = plan.warnings
    assert w.code == "W001" and "'a'" in w.message and w.line == 6


def test_sink_as_input_is_an_error() -> None:
    [e] = errors(
        '[sinks.a]\ntype = "stdout"\ninputs = ["src"]\n[sinks.b]\ntype = "stdout"\ninputs = ["a"]\n'
    )
    assert "is a sink" in e


def test_graph_renderers() -> None:
    plan = plan_of(
        '[transforms.r]\ntype = "route"\ninputs = ["src"]\nroutes = { eu = "a" }\n'
        '[sinks.eu]\ntype = "stdout"\ninputs = ["r.eu", "r._unmatched"]\n'
    )
    mermaid = to_mermaid(plan)
    assert mermaid.startswith("flowchart LR") and "n_r -->|eu| n_eu" in mermaid
    dot = to_dot(plan)
    assert '"r" -> "eu" [label="eu"];' in dot
