"""The ``sftp`` source and sink against a real asyncssh SFTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import ValidationError

from engine.components.base import ComponentContext
from engine.components.sinks.sftp import SftpSink, SftpSinkConfig
from engine.components.sources.sftp import SftpSource, SftpSourceConfig
from engine.errors import PermanentError
from engine.pipeline import compile_file, dry_run, run
from engine.records import Batch
from engine.runtime.observer import NullObserver
from tests.support.sftp_server import PASSWORD, USER, SftpServer


def context(tmp_path: Path) -> ComponentContext:
    return ComponentContext(
        component_id="remote", pipeline="p", base_dir=tmp_path, workspace=tmp_path, run_id="r1"
    )


def endpoint(server: SftpServer, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": USER,
        "password": PASSWORD,
        "known_hosts": str(server.known_hosts),
    }
    options.update(extra)
    return {k: v for k, v in options.items() if v is not None}


def put(server: SftpServer, rel: str, records: list[dict[str, Any]]) -> Path:
    path = server.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_all(server: SftpServer, tmp_path: Path, **options: Any) -> list[Batch]:
    source = SftpSource(SftpSourceConfig(**endpoint(server, **options)), context(tmp_path))

    async def main() -> list[Batch]:
        await source.open()
        try:
            out = []
            async for chunk in source.read():
                out.append(chunk.records)
                await source.ack(chunk.token)
            await source.commit()
            return out
        finally:
            await source.close()

    return anyio.run(main)


PIPELINE = """\
[pipeline]
name = "drop"

[sources.remote]
type = "sftp"
host = "127.0.0.1"
port = {port}
user = "{user}"
password = "${{env:SFTP_PASSWORD}}"
known_hosts = "{known_hosts}"
path = "/outbox/*.jsonl"
after_read = "{after_read}"
{extra}

[transforms.check]
type = "map"
inputs = ["remote"]
[transforms.check.fields]
id = {{ expr = "id", required = true }}

[sinks.out]
type = "file"
inputs = ["check"]
path = "out/all.jsonl"
"""


def pipeline(tmp_path: Path, server: SftpServer, after_read: str, extra: str = "") -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        PIPELINE.format(
            port=server.port,
            user=USER,
            known_hosts=server.known_hosts,
            after_read=after_read,
            extra=extra,
        )
    )
    return path


def run_file(path: Path) -> Any:
    plan = compile_file(path, env={"SFTP_PASSWORD": PASSWORD})
    return anyio.run(lambda: run(plan, observer=NullObserver(), workspace=path.parent / "ws"))


def test_glob_read_then_move_after_a_successful_run(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    put(sftp_server, "outbox/a.jsonl", [{"id": 1}, {"id": 2}])
    put(sftp_server, "outbox/b.jsonl", [{"id": 3}])
    put(sftp_server, "outbox/skip.csv", [{"id": 9}])
    summary = run_file(pipeline(tmp_path, sftp_server, "move", 'move_to = "/done/today"'))
    assert summary.ok, summary.error
    lines = (tmp_path / "out" / "all.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [1, 2, 3]
    assert sorted(p.name for p in (sftp_server.root / "done" / "today").iterdir()) == [
        "a.jsonl",
        "b.jsonl",
    ]
    assert sorted(p.name for p in (sftp_server.root / "outbox").iterdir()) == ["skip.csv"]


def test_failed_run_keeps_files_and_next_run_deletes_them(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    good = put(sftp_server, "outbox/a.jsonl", [{"id": 1}])
    bad = put(sftp_server, "outbox/b.jsonl", [{"id": 2}, {"name": "no id"}])
    path = pipeline(tmp_path, sftp_server, "delete")
    summary = run_file(path)
    assert not summary.ok and "id" in (summary.error or "")
    assert good.exists() and bad.exists()
    bad.write_text('{"id": 2}\n')
    summary = run_file(path)
    assert summary.ok, summary.error
    assert not good.exists() and not bad.exists()


def test_dry_run_reads_but_never_moves(sftp_server: SftpServer, tmp_path: Path) -> None:
    kept = put(sftp_server, "outbox/a.jsonl", [{"id": 1}])
    plan = compile_file(pipeline(tmp_path, sftp_server, "delete"), env={"SFTP_PASSWORD": PASSWORD})
    result = anyio.run(lambda: dry_run(plan))
    assert result.sinks["out"] == [{"id": 1}]
    assert kept.exists() and not (tmp_path / "out").exists()


def test_partially_delivered_file_is_not_acted_on(sftp_server: SftpServer, tmp_path: Path) -> None:
    put(sftp_server, "outbox/a.jsonl", [{"id": i} for i in range(5)])
    source = SftpSource(
        SftpSourceConfig(
            **endpoint(sftp_server), path="/outbox/*.jsonl", after_read="delete", batch={"size": 2}
        ),
        context(tmp_path),
    )

    async def main() -> list[str]:
        await source.open()
        try:
            tokens = [chunk.token async for chunk in source.read()]
            for token in tokens[:-1]:  # the last chunk never delivered
                await source.ack(token)
            await source.commit()
            return source.delivered()
        finally:
            await source.close()

    assert anyio.run(main) == []
    assert (sftp_server.root / "outbox" / "a.jsonl").exists()


def test_host_key_checks(
    sftp_server: SftpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(sftp_server, "x.jsonl", [{"id": 1}])
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(PermanentError, match="HostKeyNotVerifiable"):
        read_all(sftp_server, tmp_path, path="x.jsonl", known_hosts=str(empty))
    with pytest.raises(PermanentError, match=r"known_hosts file .* not found"):
        read_all(sftp_server, tmp_path, path="x.jsonl", known_hosts=str(tmp_path / "missing"))
    assert read_all(
        sftp_server,
        tmp_path,
        path="x.jsonl",
        known_hosts=str(empty),
        host_key_fingerprint=sftp_server.fingerprint,
    ) == [[{"id": 1}]]
    with pytest.raises(PermanentError, match="HostKeyNotVerifiable"):
        read_all(
            sftp_server,
            tmp_path,
            path="x.jsonl",
            host_key_fingerprint="SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
    with caplog.at_level(logging.WARNING, logger="engine.sftp"):
        got = read_all(
            sftp_server,
            tmp_path,
            path="x.jsonl",
            known_hosts=str(empty),
            accept_unknown_host_key=True,
        )
    assert got == [[{"id": 1}]]
    assert "NOT checked" in caplog.text


def test_private_key_login_and_bad_password(sftp_server: SftpServer, tmp_path: Path) -> None:
    put(sftp_server, "x.jsonl", [{"id": 1}])
    got = read_all(
        sftp_server,
        tmp_path,
        path="x.jsonl",
        password=None,
        private_key=str(sftp_server.client_key_path),
    )
    assert got == [[{"id": 1}]]
    with pytest.raises(PermanentError, match="PermissionDenied") as info:
        read_all(sftp_server, tmp_path, path="x.jsonl", password="wrong-pw-123")
    assert "wrong-pw-123" not in str(info.value)
    with pytest.raises(PermanentError, match="no remote file matches"):
        read_all(sftp_server, tmp_path, path="/nothing/*.jsonl")


def test_pem_key_and_known_hosts_read_through_file_references(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    (tmp_path / "keys").mkdir()
    pem = sftp_server.client_key_path.read_text()
    assert pem.count("\n") > 2  # a real multi-line PEM block
    (tmp_path / "keys" / "id").write_text(pem)
    (tmp_path / "keys" / "hosts").write_text(sftp_server.known_hosts.read_text())
    put(sftp_server, "outbox/a.jsonl", [{"id": 7}])
    path = pipeline(tmp_path, sftp_server, "keep")
    text = path.read_text().replace(
        'password = "${env:SFTP_PASSWORD}"', 'private_key = "${file:keys/id}"'
    )
    path.write_text(text.replace(str(sftp_server.known_hosts), "${file:keys/hosts}"))
    plan = compile_file(path, env={})
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))
    assert summary.ok, summary.error
    assert json.loads((tmp_path / "out" / "all.jsonl").read_text()) == {"id": 7}
    # the key is not a path, and never printed with the config
    assert pem.splitlines()[1] not in repr(plan.nodes["remote"].config)


def test_large_file_is_streamed_not_loaded(sftp_server: SftpServer, tmp_path: Path) -> None:
    line = json.dumps({"id": 0, "payload": "x" * 200}) + "\n"
    (sftp_server.root / "big.jsonl").write_text(line * 80_000)  # 18 MB
    size = (sftp_server.root / "big.jsonl").stat().st_size
    source = SftpSource(
        SftpSourceConfig(**endpoint(sftp_server), path="big.jsonl"), context(tmp_path)
    )

    async def main() -> tuple[int, int]:
        await source.open()
        count = 0
        try:
            tracemalloc.start()
            async for chunk in source.read():
                count += len(chunk.records)
            peak = tracemalloc.get_traced_memory()[1]
            return count, peak
        finally:
            tracemalloc.stop()
            await source.close()

    count, peak = anyio.run(main)
    assert count == 80_000
    # fixed buffers (1 MiB blocks, asyncssh requests, the in-process server) stay ~9 MB
    assert peak < size / 1.5, f"peak {peak} bytes for a {size}-byte file"


def sink_for(server: SftpServer, tmp_path: Path, **options: Any) -> SftpSink:
    config = SftpSinkConfig(**endpoint(server), inputs=["x"], **options)
    return SftpSink(config, context(tmp_path))


def test_sink_writes_a_temporary_file_and_renames_on_success(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    sink = sink_for(sftp_server, tmp_path, path="/inbox/{pipeline}/{run_id}-{date}.jsonl")
    final = sftp_server.root / sink.final.lstrip("/")
    temporary = sftp_server.root / sink.temporary.lstrip("/")

    async def main() -> None:
        await sink.open()
        await sink.write([{"id": 1}, {"id": 2}])
        await sink.write([{"id": 3}])
        assert temporary.exists() and not final.exists()
        await sink.close(success=True)

    anyio.run(main)
    assert final.parent.name == "p" and final.name.startswith("r1-")
    assert [json.loads(x)["id"] for x in final.read_text().splitlines()] == [1, 2, 3]
    assert list(final.parent.iterdir()) == [final]


def test_sink_failure_leaves_nothing_and_overwrite_false_refuses(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    sink = sink_for(sftp_server, tmp_path, path="/inbox/out.csv")

    async def failed() -> None:
        await sink.open()
        await sink.write([{"id": 1}])
        await sink.close(success=False)

    anyio.run(failed)
    assert list((sftp_server.root / "inbox").iterdir()) == []
    (sftp_server.root / "inbox" / "out.csv").write_text("id\n0\n")
    refusing = sink_for(sftp_server, tmp_path, path="/inbox/out.csv", overwrite=False)

    async def refused() -> None:
        try:
            await refusing.open()
        finally:
            await refusing.close(success=False)

    with pytest.raises(PermanentError, match="exists"):
        anyio.run(refused)
    assert (sftp_server.root / "inbox" / "out.csv").read_text() == "id\n0\n"


def test_config_rules() -> None:
    base = {"host": "h", "user": "u", "path": "/x/*.csv"}
    with pytest.raises(ValidationError, match="move_to"):
        SftpSourceConfig(**base, after_read="move")
    with pytest.raises(ValidationError, match="unknown template field"):
        SftpSinkConfig(host="h", user="u", path="/x/{region}.csv", inputs=["a"])
    cfg = SftpSourceConfig(**base, password="pw-secret")
    assert "pw-secret" not in repr(cfg) and "pw-secret" not in (cfg.resource() or "")
