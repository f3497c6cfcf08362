"""Units: signature presets on the providers' own examples, the error map, pagination, redaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import SecretStr

from engine.connectors.http.errors import (
    EXCEPTION_MAP,
    HttpPermanentError,
    HttpTransientError,
    error_for_status,
    map_http_errors,
    retry_after_seconds,
)
from engine.connectors.http.pagination import (
    CursorPagination,
    LinkPagination,
    OffsetPagination,
    Page,
    PageNumberPagination,
    Paginator,
)
from engine.connectors.http.redact import redact_url
from engine.errors import PermanentError, TransientError
from engine.health import check_plan
from engine.pipeline import compile_file
from engine.webhooks.signatures import (
    GithubSignature,
    HmacSignature,
    ShopifySignature,
    SignatureError,
    SlackSignature,
    StandardWebhooksSignature,
    StripeSignature,
    sign_standard_webhook,
    verify,
)
from tests.support.pipelines import write_pipeline

S = SecretStr


# -- signature presets -------------------------------------------------------------------------
def test_github_docs_example() -> None:
    # docs.github.com, "Validating webhook deliveries"
    spec = GithubSignature(secret=S("It's a Secret to Everybody"))
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verify(spec, {"x-hub-signature-256": header}, b"Hello, World!")
    with pytest.raises(SignatureError, match="does not match"):
        verify(spec, {"x-hub-signature-256": header}, b"Hello, World?")


SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977008"
    b"85554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c4"
    b"47fce8b6703c"
)


def test_slack_docs_example_and_timestamp_tolerance() -> None:
    # api.slack.com/authentication/verifying-requests-from-slack
    spec = SlackSignature(secret=S("8f742231b10e8888abcd99yyyzzz85a5"))
    headers = {
        "x-slack-request-timestamp": "1531420618",
        "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    verify(spec, headers, SLACK_BODY, now=1531420618 + 60)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(spec, headers, SLACK_BODY, now=1531420618 + 301)


def test_standard_webhooks_spec_vector() -> None:
    # the Standard Webhooks specification's test vector
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert (
        sign_standard_webhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    )
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,bm9wZQ== " + expected,  # rotated keys: any entry may match
    }
    spec = StandardWebhooksSignature(secret=S(secret))
    assert verify(spec, headers, body, now=1614265330).delivery_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    with pytest.raises(SignatureError):
        verify(spec, {**headers, "webhook-id": "msg_other"}, body, now=1614265330)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(spec, headers, body, now=1614265330 + 3600)


def test_stripe_scheme_with_two_v1_values_and_tolerance() -> None:
    # Stripe documents the scheme (t=, v1= over "t.body"); it publishes no fixed vector
    secret, body, ts = "whsec_test_stripe", b'{"id":"evt_1"}', "1700000000"
    good = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    spec = StripeSignature(secret=S(secret))
    header = {"stripe-signature": f"t={ts},v1={'0' * 64},v1={good},v0=ignored"}
    verify(spec, header, body, now=1700000100)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(spec, header, body, now=1700000400)
    with pytest.raises(SignatureError, match="malformed"):
        verify(spec, {"stripe-signature": "v1=abc"}, body, now=1700000000)


def test_shopify_base64_and_generic_hmac_variants() -> None:
    body = b'{"id":1}'
    digest = hmac.new(b"shop-secret", body, hashlib.sha256).digest()
    verify(
        ShopifySignature(secret=S("shop-secret")),
        {"x-shopify-hmac-sha256": base64.b64encode(digest).decode()},
        body,
    )
    with pytest.raises(SignatureError, match="missing header"):
        verify(ShopifySignature(secret=S("shop-secret")), {}, body)
    sha1 = hmac.new(b"k", body, hashlib.sha1).hexdigest().upper()
    spec = HmacSignature(secret=S("k"), header="X-Sig", algorithm="sha1", prefix="sha1=")
    verify(spec, {"x-sig": "sha1=" + sha1}, body)  # hex compares case-insensitively
    b64 = HmacSignature(secret=S("k"), header="X-Sig", encoding="base64")
    verify(
        b64,
        {"x-sig": base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()},
        body,
    )
    with pytest.raises(SignatureError) as info:
        verify(b64, {"x-sig": "nope"}, body)
    assert "k" not in str(info.value).split()  # the secret never appears


# -- the error map -----------------------------------------------------------------------------
def test_every_httpx_exception_is_mapped() -> None:
    exported = {
        obj
        for name in httpx.__all__
        if inspect.isclass(obj := getattr(httpx, name)) and issubclass(obj, Exception)
    }
    assert exported - set(EXCEPTION_MAP) == set()
    for klass, target in EXCEPTION_MAP.items():
        assert issubclass(target, TransientError | PermanentError), klass


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (408, True),
        (425, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
    ],
)
def test_status_classification(status: int, transient: bool) -> None:
    request = httpx.Request("GET", "https://api.test/x?api_key=SECRET123&page=2")
    response = httpx.Response(status, request=request, headers={"Retry-After": "7"})
    error = error_for_status(response, ["api_key"])
    assert isinstance(error, HttpTransientError if transient else HttpPermanentError)
    assert "SECRET123" not in str(error) and "page=2" in str(error)
    if status == 429:
        assert isinstance(error, HttpTransientError) and error.retry_after == 7
    assert error_for_status(httpx.Response(204, request=request)) is None


def test_connection_errors_are_transient_and_carry_no_secret() -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            with map_http_errors("GET", "http://user:pw@127.0.0.1:1/?token=abc"):
                await client.get("http://127.0.0.1:1/")

    with pytest.raises(HttpTransientError) as info:
        anyio.run(main)
    assert "pw" not in str(info.value) and "abc" not in str(info.value)
    with pytest.raises(HttpPermanentError), map_http_errors("GET", "ftp://x"):
        raise httpx.UnsupportedProtocol("ftp")


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_redact_url() -> None:
    url = "https://bob:hunter2@api.test/v1?access_token=t0k&q=shoes&client_secret=s"
    red = redact_url(url)
    assert "hunter2" not in red and "t0k" not in red and "q=shoes" in red
    assert red.endswith("client_secret=***")


# -- pagination (pure) --------------------------------------------------------------------------
def _page(url: str, body: object, records: int, links: dict | None = None) -> Page:  # type: ignore[type-arg]
    return Page(httpx.URL(url), body, records, links or {})


def test_paginators_walk_and_stop() -> None:
    link = Paginator(LinkPagination(), "https://a.test/items", {"q": 1})
    assert link.first() == ("https://a.test/items", {"q": 1})
    nxt = link.next(_page("https://a.test/items", [], 10, {"next": {"url": "/items?page=2"}}))
    assert nxt == ("https://a.test/items?page=2", {})
    # a repeated next link ends the walk instead of looping
    assert (
        link.next(_page("https://a.test/items?page=2", [], 10, {"next": {"url": "/items?page=2"}}))
        is None
    )

    cursor = Paginator(CursorPagination(path="next", stop="done"), "u", {})
    assert cursor.next(_page("https://a/u", {"next": "c1", "done": False}, 5)) == (
        "u",
        {"cursor": "c1"},
    )
    assert cursor.next(_page("https://a/u", {"next": "c2", "done": True}, 5)) is None

    offset = Paginator(OffsetPagination(limit=5, total_path="total"), "u", {})
    assert offset.first() == ("u", {"offset": 0, "limit": 5})
    assert offset.next(_page("https://a/u", {"total": 10}, 5)) == ("u", {"offset": 5, "limit": 5})
    assert offset.next(_page("https://a/u", {"total": 10}, 5)) is None  # total reached

    page = Paginator(PageNumberPagination(max_pages=2), "u", {})
    assert page.next(_page("https://a/u", {}, 3)) == ("u", {"page": 2})
    assert page.next(_page("https://a/u", {}, 3)) is None  # max_pages
    assert Paginator(PageNumberPagination(), "u", {}).next(_page("https://a/u", {}, 0)) is None


def test_paginator_with_mock_transport_link_headers() -> None:
    """A unit test at httpx's documented seam: Link headers parsed by httpx, walked by us."""

    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("page", "1"))
        headers = {"Link": f'<https://a.test/x?page={n + 1}>; rel="next"'} if n < 3 else {}
        return httpx.Response(200, json=[{"n": n}], headers=headers)

    async def main() -> list[int]:
        seen = []
        paginator = Paginator(LinkPagination(), "https://a.test/x", {})
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            request: tuple[str, dict[str, object]] | None = paginator.first()
            while request is not None:
                response = await client.get(request[0], params=request[1] or None)  # type: ignore[arg-type]
                seen.append(response.json()[0]["n"])
                request = paginator.next(
                    Page(response.request.url, response.json(), 1, response.links)
                )
        return seen

    assert anyio.run(main) == [1, 2, 3]


# -- health checks ------------------------------------------------------------------------------
def test_check_plan_reports_unreachable_endpoints(tmp_path: Path, server_url: str) -> None:
    text = f"""
[pipeline]
name = "health"

[sources.up]
type = "http"
url = "{server_url}/items/link"

[sources.down]
type = "http"
url = "http://127.0.0.1:1/nothing?api_key=SECRET"

[sinks.out]
type = "http"
inputs = ["up", "down"]
url = "{server_url}/sink/h"
"""
    plan = compile_file(write_pipeline(tmp_path, text))
    diagnostics = anyio.run(check_plan, plan)
    assert [d.code for d in diagnostics] == ["E090"]
    assert "'down'" in diagnostics[0].message and diagnostics[0].line is not None
    assert "SECRET" not in str(diagnostics[0])
    assert plan.nodes["down"].config.resource() == "http://127.0.0.1:1/nothing?api_key=***"
