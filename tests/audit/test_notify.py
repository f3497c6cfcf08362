"""Notifications go through the engine's HTTP client; a failure is logged by host only."""

from __future__ import annotations

import logging
import socket

import pytest

from engine.compliance.rules.notify import Notifier


def test_an_unreachable_webhook_is_counted_and_logged_without_its_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    notifier = Notifier(f"http://127.0.0.1:{port}/hook?token=s3cret", b"key", timeout=2.0)
    with caplog.at_level(logging.ERROR, logger="engine.audit.compliance"):
        notifier.send({"rule_id": "r1"})
        notifier.close()
    assert (notifier.sent, notifier.failed) == (0, 1)
    assert "compliance notification to 127.0.0.1 failed" in caplog.text
    assert "s3cret" not in caplog.text
