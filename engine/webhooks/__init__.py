"""Incoming webhooks: signature presets, replay protection and the intake queue."""

from __future__ import annotations

from engine.webhooks.intake import Intake, IntakeClosed, Pending
from engine.webhooks.replay import ReplayCache
from engine.webhooks.signatures import (
    SignatureError,
    SignatureSpec,
    Verified,
    sign_standard_webhook,
    standard_webhook_key,
    verify,
)

__all__ = [
    "Intake",
    "IntakeClosed",
    "Pending",
    "ReplayCache",
    "SignatureError",
    "SignatureSpec",
    "Verified",
    "sign_standard_webhook",
    "standard_webhook_key",
    "verify",
]
