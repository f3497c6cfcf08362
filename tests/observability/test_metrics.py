"""Prometheus metrics of batch runs: `--metrics-file`, `--pushgateway`, and what they count."""

from __future__ import annotations

from pathlib import Path

import anyio
from prometheus_client import CollectorRegistry

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from engine.telemetry.metrics import EngineMetrics
from tests.observability.pipeline import write_pipeline
from tests.support.cli import invoke
from tests.support.metrics import sample_value, samples
from tests.support.recorder import recording_server
from tests.support.serve_process import wait_for


def _assert_counts(text: str, pipeline: str = "obs", runs: int = 1) -> None:
    """What one run (or ``runs`` runs) of the test pipeline leaves in the metrics."""
    p = {"pipeline": pipeline}
    rows = {**p, "component": "rows", "role": "source"}
    shape = {**p, "component": "shape", "role": "transform"}
    out = {**p, "component": "out", "role": "sink"}
    assert sample_value(text, "engine_records_out_total", **rows) == 5 * runs
    assert sample_value(text, "engine_records_in_total", **shape) == 5 * runs
    assert sample_value(text, "engine_records_out_total", **shape) == 4 * runs
    assert sample_value(text, "engine_records_rejected_total", **shape) == 1 * runs
    assert sample_value(text, "engine_records_in_total", **out) == 4 * runs
    assert sample_value(text, "engine_records_out_total", **out) == 4 * runs
    dead = sample_value(text, "engine_dead_letters_total", component="shape", **p)
    assert dead == 1 * runs
    # three chunks of two rows read, each one a latency observation, in buckets
    assert sample_value(text, "engine_batch_duration_seconds_count", **rows) == 3 * runs
    buckets = [
        s
        for s in samples(text)
        if s.name == "engine_batch_duration_seconds_bucket" and s.labels["component"] == "rows"
    ]
    assert len(buckets) > 5 and buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == 3 * runs
    assert sample_value(text, "engine_runs_total", outcome="success", **p) == runs
    duration = sample_value(text, "engine_run_duration_seconds", **p)
    assert duration is not None and duration > 0


def test_metrics_file_after_a_run(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path)
    target = tmp_path / "metrics" / "engine.prom"
    code, _, err = invoke("run", str(pipeline), "-q", "--metrics-file", str(target))
    assert code == 0, err
    _assert_counts(target.read_text())
    # written under a temporary name and renamed: nothing else is left beside it
    assert [p.name for p in target.parent.iterdir()] == ["engine.prom"]


def test_metrics_file_that_cannot_be_written_is_a_warning(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    code, _, err = invoke("run", str(pipeline), "-q", "--metrics-file", str(blocker / "x.prom"))
    assert code == 0
    assert "warning: cannot write the metrics file" in err


def test_pushgateway_gets_the_run_metrics(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path, name="pushed")
    with recording_server() as gateway:
        code, _, err = invoke("run", str(pipeline), "-q", "--pushgateway", gateway.url)
    assert code == 0, err
    assert len(gateway.requests) == 1
    method, path, body = gateway.requests[0]
    assert (method, path) == ("PUT", "/metrics/job/engine/pipeline/pushed")
    _assert_counts(body.decode(), pipeline="pushed")


def test_pushgateway_unreachable_is_a_warning_and_a_bad_url_a_usage_error(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path)
    with recording_server() as gone:
        pass  # closed: nothing listens at its address any more
    code, _, err = invoke("run", str(pipeline), "-q", "--pushgateway", gone.url)
    assert code == 0
    assert f"warning: cannot push metrics to {gone.url}" in err
    code, _, err = invoke("run", str(pipeline), "--pushgateway", "ftp://x")
    assert code == 2 and "not an http(s) URL" in err


def test_one_registry_counts_every_run_of_the_process(tmp_path: Path) -> None:
    """Counters add up across runs; the process's registry is its own, not the global one."""
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    plan = compile_file(write_pipeline(tmp_path))
    for _ in range(2):
        summary = anyio.run(lambda: run(plan, observer=NullObserver(), telemetry=metrics))
        assert summary.ok
    from prometheus_client import REGISTRY, generate_latest

    _assert_counts(generate_latest(registry).decode(), runs=2)
    assert b"engine_records_out_total" not in generate_latest(REGISTRY)


def test_metrics_file_is_rewritten_during_the_run(tmp_path: Path) -> None:
    """Before the session ends (the run still going), the file is already there."""
    from engine.telemetry.session import TelemetrySession

    target = tmp_path / "during.prom"
    with TelemetrySession("obs", metrics_file=target, every=0.01) as session:
        assert session.metrics is not None
        session.metrics.running.labels("obs").inc()
        wait_for(target.exists, "the metrics file to be written during the run")
        assert sample_value(target.read_text(), "engine_runs_in_progress", pipeline="obs") == 1
    assert sample_value(target.read_text(), "engine_runs_in_progress", pipeline="obs") == 1
