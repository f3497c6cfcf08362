"""OpenTelemetry traces: a span per run and per batch stage, each batch span naming the audit
event that recorded the batch; exported over OTLP when the standard variables say so; and
nothing of OpenTelemetry imported when they do not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.ledger.store import AuditStore, default_store_url
from engine.pipeline import compile_file, run
from engine.telemetry.traces import Tracing
from tests.observability.pipeline import write_pipeline
from tests.support.cli import invoke
from tests.support.recorder import recording_server

BATCH_ACTIONS = {"batch_read": "source.read", "batch_transformed": "transform"}
BATCH_ACTIONS["batch_written"] = "sink.write"


def test_spans_carry_the_event_ids_of_the_trail(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plan = compile_file(write_pipeline(tmp_path))
    workspace = tmp_path / "ws"
    summary = anyio.run(lambda: run(plan, workspace=workspace, telemetry=Tracing(provider)))
    assert summary.ok
    spans = exporter.get_finished_spans()

    (root,) = [s for s in spans if s.name == "pipeline.run"]
    assert root.attributes is not None
    assert root.attributes["engine.run_id"] == summary.run_id
    assert root.attributes["engine.outcome"] == "success"
    assert [e.name for e in root.events] == ["dead_letter"]
    batches = [s for s in spans if s is not root]
    assert {s.parent.span_id for s in batches if s.parent} == {root.context.span_id}
    assert all(s.context.trace_id == root.context.trace_id for s in batches)
    by_name: dict[str, int] = {}
    for span in batches:
        by_name[span.name] = by_name.get(span.name, 0) + 1
        assert span.start_time is not None and span.end_time is not None
        assert root.start_time is not None and root.end_time is not None
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
    assert by_name == {"source.read": 3, "transform": 3, "sink.write": 3}
    read = [s.attributes for s in batches if s.name == "source.read"]
    assert sorted(a["engine.records"] for a in read if a) == [1, 2, 2]
    assert all(
        a and a["engine.component"] == "rows" and a["engine.pipeline"] == "obs" for a in read
    )

    # every batch span names its event on the trail, and every batch event has its span
    with AuditStore(default_store_url(workspace), create=False) as store:
        events = [
            e
            for e in store.iter_chain("pipeline:obs")
            if e.run_id == summary.run_id and e.action in BATCH_ACTIONS
        ]
    from_spans = {
        (s.attributes["engine.event_id"], s.name, s.attributes["engine.component"])
        for s in batches
        if s.attributes
    }
    from_trail = {(e.event_id, BATCH_ACTIONS[e.action], e.stage) for e in events}
    assert len(from_trail) == 9
    assert from_spans == from_trail


def test_run_exports_over_otlp_when_the_endpoint_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_server() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        code, _, err = invoke("run", str(write_pipeline(tmp_path)), "-q", "--no-audit")
    assert code == 0, err
    spans = []
    services = set()
    for method, path, body in collector.requests:
        assert (method, path) == ("POST", "/v1/traces")
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert services == {"engine"}
    names = sorted(s.name for s in spans)
    assert names.count("pipeline.run") == 1 and names.count("sink.write") == 3


def test_without_the_extra_nothing_is_imported_and_tracing_asks_for_it(tmp_path: Path) -> None:
    """OpenTelemetry blocked from import, as when the extra is not installed: a run without
    the OTEL variables imports none of it; with them it runs and names the extra."""
    pipeline = write_pipeline(tmp_path)
    script = (
        "import sys, json\n"
        "sys.modules['opentelemetry'] = None  # not installed\n"
        "from engine.cli.main import cli\n"
        "try:\n"
        "    cli([*sys.argv[1:]])\n"
        "except SystemExit as exc:\n"
        "    loaded = sorted(m for m, v in sys.modules.items()\n"
        "                    if m.startswith('opentelemetry') and v is not None)\n"
        "    print(json.dumps({'code': exc.code, 'loaded': loaded}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    args = [sys.executable, "-c", script, "run", str(pipeline), "-q", "--no-audit"]

    def engine(extra: dict[str, str]) -> tuple[dict[str, object], str]:
        done = subprocess.run(
            args, env={**env, **extra}, capture_output=True, text=True, timeout=120
        )
        return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr

    result, _ = engine({})
    assert result == {"code": 0, "loaded": []}
    result, stderr = engine({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert result == {"code": 0, "loaded": []}
    assert "pip install 'engine[otel]'" in stderr
