"""Several lines are taken where a field takes a key or certificate, and refused elsewhere."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.pipeline import compile_file
from engine.secrets import ENTRY_POINT_GROUP
from engine.secrets.file import FileSecrets

PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)

PIPELINE = """\
[pipeline]
name = "keys"

[audit]
signing_key = "${{file:key.pem}}"

[sources.remote]
type = "sftp"
host = "{host}"
user = "edi"
private_key = "${{file:key.pem}}"
known_hosts = "${{file:key.pem}}"
path = "/outbox/*.jsonl"

[sinks.out]
type = "file"
inputs = ["remote"]
path = "out.jsonl"
"""


def test_key_fields_take_several_lines_and_others_refuse_them(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(PEM)
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(host="127.0.0.1"))
    config = compile_file(path, env={}).nodes["remote"].config
    assert config.private_key.get_secret_value() == PEM.rstrip("\n")  # type: ignore[attr-defined]

    path.write_text(PIPELINE.format(host="${file:key.pem}"))
    with pytest.raises(ConfigError) as info:
        compile_file(path, env={})
    [problem] = info.value.diagnostics
    assert (problem.code, problem.file, problem.line) == ("E013", str(path), 9)
    assert "sources.remote.host" in problem.message and "key.pem" in problem.message
    assert "b3BlbnNz" not in str(info.value)


def test_the_file_backend_is_registered_by_its_entry_point() -> None:
    [point] = [p for p in entry_points(group=ENTRY_POINT_GROUP) if p.name == "file"]
    assert point.load() is FileSecrets


def test_the_sftp_example_of_the_secrets_page_compiles(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "secrets.md").read_text()
    [block] = [b.split("```", 1)[0] for b in page.split("```toml\n")[1:] if "[sources." in b]
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_ed25519").write_text(PEM)
    (tmp_path / "keys" / "known_hosts").write_text("sftp.example.com ssh-ed25519 AAAA\n")
    path = tmp_path / "p.toml"
    sink = '[sinks.out]\ntype = "file"\ninputs = ["partner"]\npath = "out.jsonl"\n'
    path.write_text(f'[pipeline]\nname = "doc"\n\n{block}\n{sink}')
    assert compile_file(path, env={}).nodes["partner"].config.private_key is not None  # type: ignore[attr-defined]
