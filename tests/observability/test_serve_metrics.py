"""`/metrics`, `/livez` and `/readyz` of a real `engine serve` process, scraped while it runs."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.support.metrics import sample_value, samples
from tests.support.serve_process import Posters, ServeProcess, sql_pipeline, wait_for


def test_scrape_a_served_pipeline_while_it_runs(tmp_path: Path) -> None:
    server = ServeProcess(sql_pipeline(tmp_path, name="scraped"), tmp_path / "home").ready()
    sink = {"pipeline": "scraped", "component": "db", "role": "sink"}

    def scrape() -> str:
        answer = httpx.get(server.url + "/metrics", timeout=10)
        assert answer.status_code == 200
        return answer.text

    def written() -> float:
        return sample_value(scrape(), "engine_records_out_total", **sink) or 0

    try:
        assert httpx.get(server.url + "/livez", timeout=10).status_code == 200
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        posters = Posters(server.url, threads=2)
        try:
            wait_for(lambda: written() >= 3, "the first deliveries to be counted")
            first = written()
            wait_for(lambda: written() >= first + 3, "the count to grow during the run")
        finally:
            accepted = posters.stop()
        text = scrape()
        # every accepted request was delivered first: the sink's counters hold them all
        assert sample_value(text, "engine_records_out_total", **sink) == len(accepted)
        assert sample_value(text, "engine_webhook_requests_total", code="200") == len(accepted)
        buckets = [
            s
            for s in samples(text)
            if s.name == "engine_batch_duration_seconds_bucket" and s.labels["component"] == "db"
        ]
        assert len(buckets) > 5 and buckets[-1].value == sample_value(
            text, "engine_batch_duration_seconds_count", **sink
        )
        assert sample_value(text, "engine_runs_in_progress", pipeline="scraped") == 1
    finally:
        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.stderr
