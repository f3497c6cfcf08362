"""Reading X12 for the ``edi`` codec (:mod:`engine.codecs.edi.codec`): interchanges to one
record per transaction set (or 997 acknowledgments). Imported when a pipeline reads EDI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO, Literal, Protocol

from engine.codecs.edi.ack997 import acknowledge
from engine.codecs.edi.envelope import Interchange, Issue, TransactionSet, read_interchanges
from engine.codecs.edi.loops import nest, segment_to_dict
from engine.codecs.edi.schemas import schema_for
from engine.codecs.edi.tokenizer import Delimiters, Tokenizer
from engine.records import Chunk, Record, Rejected

__all__ = ["EdiReadOptions", "decode"]


class EdiReadOptions(Protocol):
    """The options of the ``edi`` codec that reading uses (met by ``EdiCodec``)."""

    @property
    def strict(self) -> bool: ...
    @property
    def loops(self) -> bool: ...
    @property
    def emit(self) -> Literal["transactions", "acknowledgments"]: ...
    @property
    def encoding(self) -> str: ...


_ISA_NAMES = (
    "authorization_qualifier",
    "authorization",
    "security_qualifier",
    "security",
    "sender_qualifier",
    "sender_id",
    "receiver_qualifier",
    "receiver_id",
    "date",
    "time",
    None,  # ISA11: repetition separator (or "U"), a delimiter
    "version",
    "control_number",
    "ack_requested",
    "usage",
)
_GS_NAMES = (
    "functional_id",
    "sender",
    "receiver",
    "date",
    "time",
    "control_number",
    "agency",
    "version",
)


def decode(
    options: EdiReadOptions, stream: BinaryIO, *, source: str, batch_size: int = 1000
) -> Iterator[Chunk]:
    """Records per transaction set (and TA1); a strict interchange with problems is
    rejected whole and reading goes on with the next one."""
    tokens = Tokenizer(stream, source=source, encoding=options.encoding)
    batch: list[Record] = []
    rejected: list[Rejected] = []
    for interchange in read_interchanges(tokens):
        if options.emit == "acknowledgments":
            batch.extend(acknowledge(interchange, group) for group in interchange.groups)
        elif options.strict and (issues := list(interchange.all_issues())):
            rejected.append(_refusal(interchange, issues, source))
        else:
            batch.extend(_records(options, interchange))
        while len(batch) >= batch_size:
            yield Chunk(records=batch[:batch_size], rejected=rejected)
            del batch[:batch_size]
            rejected = []
        if len(rejected) >= batch_size:
            yield Chunk(records=[], rejected=rejected)
            rejected = []
    if batch or rejected:
        yield Chunk(records=batch, rejected=rejected)


def _records(options: EdiReadOptions, interchange: Interchange) -> Iterator[Record]:
    isa = interchange.header.elements
    isa_fields = {
        name: isa[i].rstrip() if i < len(isa) else ""
        for i, name in enumerate(_ISA_NAMES, start=1)
        if name is not None
    }
    shared = [str(i) for i in interchange.issues]
    for ack in interchange.acks:
        record: Record = {
            "interchange": dict(isa_fields),
            "group": None,
            "transaction_set": "TA1",
            "control_number": ack.elements[1] if len(ack.elements) > 1 else "",
            "segments": [segment_to_dict(ack.elements, interchange.delimiters)],
        }
        if shared:
            record["errors"] = list(shared)
        yield record
    for group in interchange.groups:
        gs = group.header.elements
        gs_fields = {n: gs[i] if i < len(gs) else "" for i, n in enumerate(_GS_NAMES, 1)}
        group_errors = shared + [str(i) for i in group.issues]
        for ts in group.sets:
            record = _record(options, ts, interchange.delimiters)
            record["interchange"] = dict(isa_fields)
            record["group"] = dict(gs_fields)
            errors = group_errors + [str(i) for i in ts.issues]
            if errors:
                record["errors"] = errors
            yield record


def _record(options: EdiReadOptions, ts: TransactionSet, d: Delimiters) -> Record:
    st = ts.header.elements
    ts_id = st[1] if len(st) > 1 else ""
    segments: list[dict[str, Any]] = [segment_to_dict(s.elements, d) for s in ts.segments]
    schema = schema_for(ts_id) if options.loops else None
    record: Record = {
        "interchange": None,
        "group": None,
        "transaction_set": ts_id,
        "control_number": st[2] if len(st) > 2 else "",
    }
    if len(st) > 3 and st[3]:
        record["implementation"] = st[3]
    record["segments"] = nest(segments, schema) if schema is not None else segments
    return record


def _refusal(interchange: Interchange, issues: list[Issue], source: str) -> Rejected:
    """A strict reader's rejection of a whole interchange: its X12 text and every problem."""
    d = interchange.delimiters
    text = "".join(d.element.join(seg.elements) + d.segment for seg in interchange.segments())
    first = issues[0]
    more = (
        f" (and {len(issues) - 1} more: {'; '.join(map(str, issues[1:4]))})" if issues[1:] else ""
    )
    return Rejected(text, f"{first}{more}", f"{source}:{first.segment.line}")
