"""The codec registry: names, summaries and extensions declared once, codecs from entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

import pytest

from engine.codecs import CodecConfig, Encoder, codec_for_path
from engine.codecs.csv import CsvCodec
from engine.codecs.json import JsonCodec
from engine.codecs.registry import CodecRegistry, default_codecs, load_entry_points
from engine.errors import RegistrationError
from engine.records import Chunk

ROOT = Path(__file__).resolve().parents[2]

#: A third-party codec, installed through a dist-info folder's entry points.
PLUGIN = '''
from typing import ClassVar, Literal
from engine.codecs import CodecConfig, Encoder
from engine.records import Chunk

class LinesCodec(CodecConfig):
    """Each line of text is one record, {"line": text}."""

    extensions: ClassVar = {"lines": {}}
    type: Literal["lines"] = "lines"

    def decode(self, stream, *, source, batch_size=1000):
        yield Chunk([{"line": line.decode().rstrip("\\n")} for line in stream])

    def encoder(self, stream):
        class LinesEncoder(Encoder):
            def write(self, records):
                stream.write(b"".join(f"{r['line']}\\n".encode() for r in records))
        return LinesEncoder()
'''


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    """A folder holding an installed distribution that adds the ``lines`` codec."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "engine_lines_codec.py").write_text(PLUGIN)
    dist = site / "engine_lines_codec-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: engine-lines-codec\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[engine.codecs]\nlines = engine_lines_codec:LinesCodec\n"
    )
    return site


def test_builtin_codecs_declare_their_extensions_once() -> None:
    registry = default_codecs()
    assert registry.names()[:5] == ["json", "jsonl", "csv", "xml", "edi"]
    claimed = [ext for kind in registry for ext in kind.extensions]
    assert len(claimed) == len(set(claimed))
    assert {"json", "jsonl", "ndjson", "csv", "tsv", "xml", "edi", "x12"} <= set(claimed)
    for kind in registry:
        assert kind.summary and kind.config.model_fields["type"].default == kind.type
        for ext in kind.extensions:
            assert codec_for_path(f"a/b.{ext.upper()}") == kind.for_extension(ext)


def test_the_written_extension_is_the_most_specific_claimed() -> None:
    registry = default_codecs()
    assert registry.extension_of(CsvCodec(delimiter="\t")) == "tsv"
    assert registry.extension_of(CsvCodec(delimiter=";")) == "csv"
    assert registry.extension_of(JsonCodec()) == "json"


class DotCodec(CodecConfig):
    """Claims .json, which json already claims."""

    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {"json": {}}
    type: Literal["dot"] = "dot"

    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        yield Chunk([])

    def encoder(self, stream: BinaryIO) -> Encoder:
        raise NotImplementedError


def test_an_extension_claimed_twice_is_refused() -> None:
    with pytest.raises(RegistrationError, match=r"claims \.json, which codec 'json' already"):
        default_codecs().fork().register(DotCodec)


def test_a_codec_without_a_type_literal_or_an_encoder_is_refused() -> None:
    class Untyped(DotCodec):
        type: str = "untyped"  # type: ignore[assignment]

    class Abstract(CodecConfig):
        type: Literal["abstract"] = "abstract"

    registry = CodecRegistry()
    with pytest.raises(RegistrationError, match="type"):
        registry.register(Untyped)
    with pytest.raises(RegistrationError, match="does not implement"):
        registry.register(Abstract)
    with pytest.raises(RegistrationError, match="not a CodecConfig"):
        registry.register(dict)  # type: ignore[arg-type]


def test_entry_point_adds_a_codec(plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(plugin))
    registry = CodecRegistry()
    load_entry_points(registry)
    kind = registry.get("lines")
    assert kind is not None and kind.summary == 'Each line of text is one record, {"line": text}.'
    assert registry.for_path("in/notes.lines") == kind.config()
    sys.modules.pop("engine_lines_codec", None)


def test_an_installed_codec_works_in_a_pipeline(plugin: Path, tmp_path: Path) -> None:
    (tmp_path / "in.lines").write_text("alpha\nbeta\n")
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[pipeline]\nname = "lines"\n'
        '[sources.src]\ntype = "file"\npath = "in.lines"\n'
        '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "out.txt"\ncodec = "lines"\n'
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--no-audit", "-q", str(pipeline)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.txt").read_text() == "alpha\nbeta\n"
