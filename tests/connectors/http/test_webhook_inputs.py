"""Webhook inputs that must work (forms, raw text, unpadded secrets) or be refused with a reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from engine.errors import ConfigError, DataError
from engine.mapping import compile_expression
from engine.pipeline import compile_file
from engine.webhooks.body import FORM as FORM_TYPE
from engine.webhooks.body import decode_request_body
from engine.webhooks.signatures import (
    SignatureError,
    SlackSignature,
    StandardWebhooksSignature,
    StripeSignature,
    sign_standard_webhook,
    verify,
)
from tests.support.serve_process import serve_in_process

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

FORMS = """
[pipeline]
name = "forms"

[sources.slash]
type = "webhook"
path = "/slack/commands"
signature = {{ type = "slack", secret = "{secret}" }}

[sources.github]
type = "webhook"
path = "/github"
signature = {{ type = "github", secret = "{secret}" }}

[sources.notes]
type = "webhook"
path = "/notes"
content = "text"

[sources.plain]
type = "webhook"
path = "/plain"

[sinks.db]
type = "sql"
inputs = ["slash", "github", "notes", "plain"]
url = "sqlite:///{db}"
table = "hooks"
extra_fields = "ignore"
"""


def slack_headers(body: bytes, ts: str | None = None) -> dict[str, str]:
    ts = str(int(time.time())) if ts is None else ts
    digest = hmac.new(SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def forms_pipeline(tmp_path: Path) -> Path:
    db = tmp_path / "out.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE hooks "
            "(command TEXT, text TEXT, action TEXT, body TEXT, content_type TEXT)"
        )
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(FORMS.format(secret=SLACK_SECRET, db=db.as_posix()), encoding="utf-8")
    return pipeline


def test_form_and_text_bodies_become_records(tmp_path: Path) -> None:
    pipeline = forms_pipeline(tmp_path)
    db = tmp_path / "out.db"
    slash = urlencode({"command": "/deploy", "text": "api now", "user_name": "ada"}).encode()
    form = urlencode({"payload": json.dumps({"action": "opened", "number": 1})}).encode()
    github = {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SLACK_SECRET.encode(), form, hashlib.sha256).hexdigest(),
        "X-GitHub-Delivery": "form-1",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answers: dict[str, httpx.Response] = {}

    async def client(http: httpx.AsyncClient) -> None:
        answers["slash"] = await http.post(
            "/slack/commands", content=slash, headers=slack_headers(slash)
        )
        answers["github"] = await http.post("/github", content=form, headers=github)
        answers["notes"] = await http.post(
            "/notes", content="plain words", headers={"Content-Type": "text/plain"}
        )
        answers["plain"] = await http.post(
            "/plain", content="plain words", headers={"Content-Type": "text/plain"}
        )

    anyio.run(serve_in_process, pipeline, tmp_path / "home", client)
    assert {k: a.status_code for k, a in answers.items()} == {
        "slash": 200,
        "github": 200,
        "notes": 200,
        "plain": 400,
    }
    error = answers["plain"].json()["error"]
    assert "request body is not JSON (Content-Type: text/plain)" in error
    assert "response" not in error and "webhook:/plain" in error
    with sqlite3.connect(db) as conn:
        rows = set(conn.execute("SELECT command, text, action, body, content_type FROM hooks"))
    assert rows == {
        ("/deploy", "api now", None, None, None),
        (None, None, "opened", None, None),
        (None, None, None, "plain words", "text/plain"),
    }


def test_form_decoding_edges() -> None:
    def decode(body: bytes, kind: str = "form") -> list[dict[str, object]]:
        return decode_request_body(
            body, None, kind=kind, codec=None, records=None, where="webhook:/h"
        )  # type: ignore[arg-type]

    assert decode(b"tag=a&tag=b&empty=") == [{"tag": ["a", "b"], "empty": ""}]
    assert decode(b"payload=%5B%7B%22id%22%3A1%7D%2C%7B%22id%22%3A2%7D%5D") == [
        {"id": 1},
        {"id": 2},
    ]
    assert decode(b"payload=x&other=y") == [{"payload": "x", "other": "y"}]
    with pytest.raises(DataError, match=r"webhook:/h payload: request body is not JSON"):
        decode(b"payload=%7Bnope")
    with pytest.raises(DataError, match=r"not UTF-8 form data \(byte offset 2\)"):
        decode(b"a=\xff")
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte offset 0\)"):
        decode(b"\xfe", "text")
    with pytest.raises(DataError, match=r"request body is not JSON: .*\(byte offset 1\)"):
        decode(b"{x", "json")
    with pytest.raises(DataError, match=r"^webhook:/h\[0\]: request body: expected an object"):
        decode(b"[5]", "json")
    with pytest.raises(DataError, match=r"^webhook:/h: request body: `records` cannot select"):
        decode_request_body(
            b'{"x": 5}',
            None,
            kind="json",
            codec=None,
            records=compile_expression("length(x)"),
            where="webhook:/h",
        )


@pytest.mark.parametrize(
    "ts", ["nan", "NaN", "inf", "1e400", "1614265330.5", "-1614265330", "9" * 13, "", "0x10"]
)
def test_timestamps_that_are_not_whole_seconds_are_refused(ts: str) -> None:
    now = 1614265330
    spec = SlackSignature(secret=SecretStr(SLACK_SECRET))
    body = b"text=x"
    with pytest.raises(SignatureError, match="malformed signature timestamp"):
        verify(spec, {k.lower(): v for k, v in slack_headers(body, ts).items()}, body, now=now)
    stripe = StripeSignature(secret=SecretStr("s"))
    signed = hmac.new(b"s", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError, match="malformed"):
        verify(stripe, {"stripe-signature": f"t={ts},v1={signed}"}, body, now=now)


def test_a_nan_timestamp_gets_a_401_with_its_reason(tmp_path: Path) -> None:
    pipeline = forms_pipeline(tmp_path)
    body = b"command=%2Fx"
    answers: list[httpx.Response] = []

    async def client(http: httpx.AsyncClient) -> None:
        for ts in ("nan", "1e400", str(int(time.time())) + ".5"):
            answers.append(
                await http.post("/slack/commands", content=body, headers=slack_headers(body, ts))
            )

    anyio.run(serve_in_process, pipeline, tmp_path / "home", client)
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all("malformed signature timestamp" in a.json()["error"] for a in answers)


def test_unpadded_standard_webhooks_secret_matches_the_reference_library() -> None:
    webhooks = pytest.importorskip("standardwebhooks.webhooks")
    key = bytes(range(16))  # 16 bytes: base64 needs two '=' of padding
    padded = "whsec_" + base64.b64encode(key).decode()
    unpadded = padded.rstrip("=")
    assert unpadded != padded
    body, msg_id, ts = b'{"type":"ping"}', "msg_1", 1700000000
    reference = webhooks.Webhook(unpadded).sign(
        msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode()
    )
    assert sign_standard_webhook(unpadded, msg_id, ts, body) == reference
    assert sign_standard_webhook(padded, msg_id, ts, body) == reference
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": reference}
    spec = StandardWebhooksSignature(secret=SecretStr(unpadded))
    assert verify(spec, headers, body, now=ts).delivery_id == msg_id


@pytest.mark.parametrize(
    ("preset", "secret", "reason"),
    [
        ("standard-webhooks", "whsec_not*base64!", "not whsec_ + base64"),
        ("standard-webhooks", "whsec_", "not whsec_ + base64"),
        ("github", "", "the signing secret is empty"),
    ],
)
def test_a_bad_secret_is_a_located_validate_error(
    tmp_path: Path, preset: str, secret: str, reason: str
) -> None:
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        f"""[pipeline]
name = "sw"

[sources.hook]
type = "webhook"
path = "/hook"
signature = {{ type = "{preset}", secret = "{secret}" }}

[sinks.out]
type = "stdout"
inputs = ["hook"]
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        compile_file(pipeline)
    message = str(info.value)
    assert f"{pipeline}:7:" in message
    assert "sources.hook.signature.secret" in message and reason in message
    assert "not*base64" not in message  # the secret is never echoed


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=100).map(str.encode),
        st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4).map(
            lambda d: urlencode(d).encode()
        ),
    ),
    kind=st.sampled_from(["auto", "json", "form", "text"]),
    content_type=st.sampled_from([None, "application/json", FORM_TYPE, "text/plain; charset=x"]),
)
@example(body=b"5", kind="json", content_type=None)
@example(body=b"payload=%5B1%5D", kind="auto", content_type=FORM_TYPE)
def test_any_body_decodes_or_is_a_located_data_error(
    body: bytes, kind: str, content_type: str | None
) -> None:
    try:
        records = decode_request_body(
            body,
            content_type,
            kind=kind,  # type: ignore[arg-type]
            codec=None,
            records=None,
            where="webhook:/h",
        )
    except DataError as exc:
        assert str(exc).startswith("webhook:/h") and "request body" in str(exc)
    else:
        assert all(isinstance(r, dict) for r in records)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "x-slack-request-timestamp",
                "x-slack-signature",
                "stripe-signature",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
            ]
        ),
        st.text(max_size=40),
    ),
    body=st.binary(max_size=50),
)
def test_any_headers_verify_or_raise_a_signature_error(
    headers: dict[str, str], body: bytes
) -> None:
    specs = [
        SlackSignature(secret=SecretStr(SLACK_SECRET)),
        StripeSignature(secret=SecretStr("s")),
        StandardWebhooksSignature(secret=SecretStr("whsec_" + "A" * 22)),
    ]
    for spec in specs:
        with pytest.raises(SignatureError):
            verify(spec, headers, body)
