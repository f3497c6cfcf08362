"""Webhook signature presets: verify incoming requests, sign outgoing ones.

Presets: ``hmac`` (any header, sha256/sha1/sha512, hex/base64, optional prefix), ``github``
(X-Hub-Signature-256), ``stripe`` (Stripe-Signature ``t=``/``v1=``), ``shopify``
(X-Shopify-Hmac-Sha256, base64), ``slack`` (v0 with X-Slack-Request-Timestamp) and
``standard-webhooks`` (webhook-id / webhook-timestamp / webhook-signature). Comparisons are
constant-time; presets that sign a timestamp refuse one outside ``tolerance`` seconds.
Errors name what is wrong, never the secret or the expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from engine.errors import PermanentError

__all__ = [
    "GithubSignature",
    "HmacSignature",
    "ShopifySignature",
    "SignatureError",
    "SignatureSpec",
    "SlackSignature",
    "StandardWebhooksSignature",
    "StripeSignature",
    "Verified",
    "checked_standard_webhook_secret",
    "sign_standard_webhook",
    "standard_webhook_key",
    "verify",
]


class SignatureError(PermanentError):
    """The request's signature is missing, malformed, wrong or too old; never names secrets."""


class _Sig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: SecretStr = Field(description="The signing secret; use `${env:NAME}`.")

    @field_validator("secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("the signing secret is empty")
        return value


class _Timed(_Sig):
    tolerance: float = Field(
        300.0, gt=0, description="Seconds a signed timestamp may differ from now."
    )


class HmacSignature(_Sig):
    """A generic HMAC of the raw body in one header."""

    type: Literal["hmac"] = "hmac"
    header: str = Field("X-Signature", description="Header carrying the signature.")
    algorithm: Literal["sha256", "sha1", "sha512"] = Field("sha256", description="Hash.")
    encoding: Literal["hex", "base64"] = Field("hex", description="Digest encoding.")
    prefix: str = Field("", description="Text before the digest, e.g. 'sha256='.")
    id_header: str | None = Field(
        None, description="Header with a delivery id, for replay protection."
    )


class GithubSignature(_Sig):
    """GitHub: X-Hub-Signature-256 = sha256=HEX(HMAC-SHA256(secret, body))."""

    type: Literal["github"] = "github"


class ShopifySignature(_Sig):
    """Shopify: X-Shopify-Hmac-Sha256 = BASE64(HMAC-SHA256(secret, body))."""

    type: Literal["shopify"] = "shopify"


class StripeSignature(_Timed):
    """Stripe: Stripe-Signature t=TS,v1=HEX(HMAC-SHA256(secret, 'TS.body'))."""

    type: Literal["stripe"] = "stripe"


class SlackSignature(_Timed):
    """Slack: X-Slack-Signature v0=HEX(HMAC-SHA256(secret, 'v0:TS:body'))."""

    type: Literal["slack"] = "slack"


class StandardWebhooksSignature(_Timed):
    """Standard Webhooks: webhook-signature v1,BASE64(HMAC-SHA256(key, 'id.ts.body'))."""

    type: Literal["standard-webhooks"] = "standard-webhooks"

    @field_validator("secret")
    @classmethod
    def _base64_key(cls, value: SecretStr) -> SecretStr:
        return checked_standard_webhook_secret(value)


SignatureSpec = Annotated[
    HmacSignature
    | GithubSignature
    | ShopifySignature
    | StripeSignature
    | SlackSignature
    | StandardWebhooksSignature,
    Field(discriminator="type"),
]


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose signature checked out.

    ``delivery_id`` is the provider's id of the delivery (None when it sends none) and
    ``digest`` the SHA-256 of the bytes the signature covers; replay protection keys on both,
    because most providers do not sign their delivery-id header.
    """

    delivery_id: str | None
    digest: str


def _verified(delivery_id: str | None, signed: bytes) -> Verified:
    return Verified(delivery_id or None, hashlib.sha256(signed).hexdigest())


def _mac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if value is None:
        raise SignatureError(f"missing header {name}")
    return value


#: whole seconds since the epoch, as every timed preset sends them (12 digits reach year 33658)
_TIMESTAMP_DIGITS = 12


def _timestamp(value: str, tolerance: float, now: float) -> None:
    # whole seconds only: float() would take "nan" (which compares false, so passes any
    # tolerance), "1e400" (inf) and fractions no provider sends
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= _TIMESTAMP_DIGITS):
        raise SignatureError(
            "malformed signature timestamp (expected whole seconds since the epoch)"
        )
    if abs(now - int(text)) > tolerance:
        raise SignatureError(f"signature timestamp outside the {tolerance:g}s tolerance")


def checked_standard_webhook_secret(value: SecretStr) -> SecretStr:
    """A config validator's check: ``value`` is a Standard Webhooks secret (ValueError if not,
    without the secret in the message)."""
    try:
        standard_webhook_key(value.get_secret_value())
    except SignatureError as exc:
        raise ValueError(str(exc)) from None
    return value


def standard_webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64, padding optional)."""
    raw = secret.removeprefix("whsec_").strip()
    raw += "=" * (-len(raw) % 4)  # the reference libraries accept unpadded secrets
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise SignatureError("standard-webhooks secret is not whsec_ + base64")
    return key


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for an outgoing delivery."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = _mac(standard_webhook_key(secret), content)
    return "v1," + base64.b64encode(digest).decode()


def verify(
    spec: SignatureSpec, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> Verified:
    """Check a request; ``headers`` keys are lowercase. Raises SignatureError."""
    now = time.time() if now is None else now
    secret = spec.secret.get_secret_value()
    key = secret.encode()
    if isinstance(spec, GithubSignature):
        given = _header(headers, "X-Hub-Signature-256")
        expected = "sha256=" + _mac(key, body).hex()
        if not _same(given, expected):
            raise SignatureError("X-Hub-Signature-256 does not match")
        return _verified(headers.get("x-github-delivery"), body)
    if isinstance(spec, ShopifySignature):
        given = _header(headers, "X-Shopify-Hmac-Sha256")
        expected = base64.b64encode(_mac(key, body)).decode()
        if not _same(given, expected):
            raise SignatureError("X-Shopify-Hmac-Sha256 does not match")
        return _verified(headers.get("x-shopify-webhook-id"), body)
    if isinstance(spec, SlackSignature):
        ts = _header(headers, "X-Slack-Request-Timestamp")
        given = _header(headers, "X-Slack-Signature")
        _timestamp(ts, spec.tolerance, now)
        signed = b"v0:" + ts.encode() + b":" + body
        if not _same(given, "v0=" + _mac(key, signed).hex()):
            raise SignatureError("X-Slack-Signature does not match")
        return _verified(None, signed)
    if isinstance(spec, StripeSignature):
        return _verify_stripe(spec, key, headers, body, now)
    if isinstance(spec, StandardWebhooksSignature):
        return _verify_standard(spec, secret, headers, body, now)
    return _verify_hmac(spec, key, headers, body)


def _verify_hmac(
    spec: HmacSignature, key: bytes, headers: Mapping[str, str], body: bytes
) -> Verified:
    given = _header(headers, spec.header)
    digest = _mac(key, body, spec.algorithm)
    encoded = digest.hex() if spec.encoding == "hex" else base64.b64encode(digest).decode()
    expected = spec.prefix + encoded
    if spec.encoding == "hex":  # hex digests are case-insensitive
        given, expected = given.lower(), expected.lower()
    if not _same(given, expected):
        raise SignatureError(f"{spec.header} does not match")
    delivery = headers.get(spec.id_header.lower()) if spec.id_header else None
    return _verified(delivery, body)


def _verify_stripe(
    spec: StripeSignature, key: bytes, headers: Mapping[str, str], body: bytes, now: float
) -> Verified:
    header = _header(headers, "Stripe-Signature")
    ts: str | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            ts = value
        elif name == "v1":
            candidates.append(value)
    if ts is None or not candidates:
        raise SignatureError("malformed Stripe-Signature (needs t= and v1=)")
    _timestamp(ts, spec.tolerance, now)
    signed = ts.encode() + b"." + body
    expected = _mac(key, signed).hex()
    # compare against every candidate: a rolled secret sends two v1 values
    if not any(_same(c, expected) for c in candidates):
        raise SignatureError("Stripe-Signature does not match")
    return _verified(None, signed)


def _verify_standard(
    spec: StandardWebhooksSignature,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> Verified:
    msg_id = _header(headers, "webhook-id")
    ts = _header(headers, "webhook-timestamp")
    given = _header(headers, "webhook-signature")
    _timestamp(ts, spec.tolerance, now)
    content = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(_mac(standard_webhook_key(secret), content)).decode()
    matched = False
    for entry in given.split():
        version, _, signature = entry.partition(",")
        # evaluate every entry so timing does not tell which one matched
        matched |= version == "v1" and _same(signature, expected)
    if not matched:
        raise SignatureError("webhook-signature does not match")
    return _verified(msg_id, content)
