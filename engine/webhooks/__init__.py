"""Incoming webhooks: signature presets, replay protection and the intake queue."""

from __future__ import annotations

from engine.webhooks.intake import Intake, IntakeClosed, Pending
from engine.webhooks.replay import (
    Claim,
    ReplayStore,
    Seen,
    SqliteReplayStore,
    open_replay_store,
)
from engine.webhooks.signatures import (
    SignatureError,
    SignatureSpec,
    Verified,
    sign_standard_webhook,
    standard_webhook_key,
    verify,
)

__all__ = [
    "Claim",
    "Intake",
    "IntakeClosed",
    "Pending",
    "ReplayStore",
    "Seen",
    "SignatureError",
    "SignatureSpec",
    "SqliteReplayStore",
    "Verified",
    "open_replay_store",
    "sign_standard_webhook",
    "standard_webhook_key",
    "verify",
]
