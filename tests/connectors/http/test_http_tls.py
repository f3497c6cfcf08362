"""``ca_cert``: an https server signed by a private CA is trusted through ``${file:ca.pem}``."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.errors import ConfigError
from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from tests.support.http_server import ServerThread

PIPELINE = """\
[pipeline]
name = "tls"

[sources.api]
type = "http"
url = "{url}/items/link"
{extra}

[sinks.out]
type = "file"
inputs = ["api"]
path = "out.jsonl"
"""


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    is_ca = subject == issuer[0]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An https server whose certificate a fresh private CA signed: its URL and the CA's PEM."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, ("test CA", ca_key))
    leaf = _certificate("127.0.0.1", key, ("test CA", ca_key))
    (folder / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls = {"ssl_certfile": str(folder / "cert.pem"), "ssl_keyfile": str(folder / "key.pem")}
    with ServerThread(**tls) as server:
        yield server.url, ca.public_bytes(serialization.Encoding.PEM).decode()


def _run(tmp_path: Path, url: str, extra: str = "") -> object:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(url=url, extra=extra))
    plan = compile_file(path, env={})
    return anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))


def test_a_private_ca_read_through_file_is_trusted(
    https_server: tuple[str, str], tmp_path: Path
) -> None:
    url, ca_pem = https_server
    (tmp_path / "ca.pem").write_text(ca_pem)
    summary = _run(tmp_path, url, 'ca_cert = "${file:ca.pem}"')
    assert summary.ok, summary.error  # type: ignore[attr-defined]
    assert (tmp_path / "out.jsonl").read_text().count("\n") > 0

    refused = _run(tmp_path, url, "retry = { attempts = 1 }")  # the system's CAs do not know it
    assert not refused.ok and "ConnectError" in str(refused.error)  # type: ignore[attr-defined]


def test_ca_cert_takes_pem_only(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(url="https://127.0.0.1:9", extra='ca_cert = "certs/ca.pem"'))
    with pytest.raises(ConfigError, match=r"ca_cert takes PEM certificates.*\$\{file:path\}"):
        compile_file(path, env={})
