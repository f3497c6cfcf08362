"""CodecSpec as a config field, the extension guess, and decode_bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

import engine.codecs
from engine.codecs import (
    CodecConfig,
    CodecSpec,
    CsvCodec,
    JsonCodec,
    JsonlCodec,
    codec_for_path,
    decode_bytes,
)
from engine.codecs.edi import EdiCodec
from engine.codecs.xml import XmlCodec


class Holder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: CodecSpec


def test_public_names_are_pinned() -> None:
    assert sorted(engine.codecs.__all__) == [
        "CodecConfig",
        "CodecSpec",
        "CsvCodec",
        "Encoder",
        "JsonCodec",
        "JsonlCodec",
        "codec_for_path",
        "decode_bytes",
    ]


@pytest.mark.parametrize("codec", engine.codecs._CODECS)
def test_every_registered_codec_is_accepted_by_name_and_as_a_table(
    codec: type[CodecConfig],
) -> None:
    name = codec.model_fields["type"].default
    assert type(Holder(codec=name).codec) is codec
    assert type(Holder.model_validate({"codec": {"type": name}}).codec) is codec


def test_table_form_carries_options() -> None:
    holder = Holder.model_validate({"codec": {"type": "csv", "delimiter": ";", "types": {}}})
    assert holder.codec == CsvCodec(delimiter=";")


def test_unknown_codec_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as info:
        Holder(codec="xml-ish")
    message = str(info.value)
    assert "'json', 'jsonl', 'csv'" in message


def test_option_of_another_codec_is_refused() -> None:
    with pytest.raises(ValidationError, match="delimiter"):
        Holder.model_validate({"codec": {"type": "json", "delimiter": ";"}})


def test_json_schema_offers_the_string_shorthand_and_the_tables() -> None:
    names = [codec.model_fields["type"].default for codec in engine.codecs._CODECS]
    assert {"json", "jsonl", "csv"} <= set(names)
    schema = Holder.model_json_schema()["properties"]["codec"]
    shorthand, tables = schema["anyOf"]
    assert shorthand == {"enum": names, "type": "string"}
    assert sorted(tables["discriminator"]["mapping"]) == sorted(names)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data/in.json", JsonCodec()),
        ("EVENTS.JSONL", JsonlCodec()),
        (Path("a/b.ndjson"), JsonlCodec()),
        ("x.csv", CsvCodec()),
        ("x.tsv", CsvCodec(delimiter="\t")),
        ("orders.XML", XmlCodec()),
        ("in/830.edi", EdiCodec()),
        ("in/846.x12", EdiCodec()),
        ("x.csv.gz", None),
        ("x.avro", None),
        ("noext", None),
    ],
)
def test_codec_for_path(path: str | Path, expected: CodecConfig | None) -> None:
    assert codec_for_path(path) == expected


def test_decode_bytes_gathers_every_chunk() -> None:
    data = b"\n".join(b'{"i": %d}' % i for i in range(25_000)) + b"\nbad"
    chunk = decode_bytes(JsonlCodec(), data, source="s")
    assert len(chunk.records) == 25_000
    assert [r.location for r in chunk.rejected] == ["s:25001"]
