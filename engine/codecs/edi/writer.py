"""Records to X12 interchanges: ISA/GS/ST envelopes, control numbers and trailer counts.

Consecutive records with the same interchange fields share one ISA...IEA; within it,
records with the same group fields share one GS...GE. Control numbers come from the
record when it has them, otherwise they are generated (ISA13 and GS06 counting up from
the codec's ``control_number``, ST02 counting ``0001``... within each group).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

from engine.codecs.base import CodecError, Encoder
from engine.codecs.edi.loops import flatten, segment_to_elements
from engine.codecs.edi.tokenizer import Delimiters
from engine.errors import PermanentError
from engine.records import Batch, Record

__all__ = ["FUNCTIONAL_IDS", "X12Encoder", "X12WriterOptions"]


class X12WriterOptions(Protocol):
    """The encoding options the writer reads (:class:`~engine.codecs.edi.codec.EdiCodec`'s)."""

    @property
    def encoding(self) -> str: ...
    @property
    def element_separator(self) -> str: ...
    @property
    def component_separator(self) -> str: ...
    @property
    def repetition_separator(self) -> str: ...
    @property
    def newline(self) -> bool: ...
    @property
    def sender_qualifier(self) -> str: ...
    @property
    def sender_id(self) -> str: ...
    @property
    def receiver_qualifier(self) -> str: ...
    @property
    def receiver_id(self) -> str: ...
    @property
    def application_sender(self) -> str | None: ...
    @property
    def application_receiver(self) -> str | None: ...
    @property
    def version(self) -> str: ...
    @property
    def group_version(self) -> str: ...
    @property
    def usage(self) -> str: ...
    @property
    def ack_requested(self) -> bool: ...
    @property
    def control_number(self) -> int: ...
    def delimiters(self) -> Delimiters: ...


FUNCTIONAL_IDS = {
    "810": "IN",
    "820": "RA",
    "830": "PS",
    "846": "IB",
    "850": "PO",
    "855": "PR",
    "856": "SH",
    "860": "PC",
    "865": "CA",
    "940": "OW",
    "945": "SW",
    "997": "FA",
    "999": "FA",
    "210": "IM",
    "214": "QM",
}

_ISA_FIELDS = (
    ("authorization_qualifier", 2),
    ("authorization", 10),
    ("security_qualifier", 2),
    ("security", 10),
    ("sender_qualifier", 2),
    ("sender_id", 15),
    ("receiver_qualifier", 2),
    ("receiver_id", 15),
    ("date", 6),
    ("time", 4),
)


class _Error(PermanentError):
    """A problem in one record; becomes a CodecError naming the record."""


class X12Encoder(Encoder):
    """Writes transaction-set records as interchanges; ``finish`` closes the open envelopes."""

    def __init__(self, config: X12WriterOptions, stream: BinaryIO) -> None:
        self._c = config
        self._stream = stream
        self._now = datetime.now(UTC)
        self._next_isa = config.control_number
        self._next_gs = config.control_number
        self._ikey: tuple[Any, ...] | None = None
        self._gkey: tuple[Any, ...] | None = None
        self._isa_number = ""
        self._gs_number = ""
        self._groups = 0
        self._sets = 0
        self._count = 0
        self._version = config.version
        d = config.delimiters()
        self._term = d.segment + ("\n" if config.newline else "")
        self._forbidden = {d.element, d.component, d.segment, *(d.repetition or "")}

    # -- envelopes -----------------------------------------------------------------------

    def _emit(self, elements: list[str]) -> None:
        sep = self._c.element_separator
        self._stream.write((sep.join(elements) + self._term).encode(self._c.encoding))

    def _interchange(self, record: Record) -> dict[str, str]:
        c = self._c
        given = record.get("interchange") or {}
        if not isinstance(given, dict):
            raise _Error("`interchange` must be an object")
        fields = {
            "authorization_qualifier": "00",
            "authorization": "",
            "security_qualifier": "00",
            "security": "",
            "sender_qualifier": c.sender_qualifier,
            "sender_id": c.sender_id,
            "receiver_qualifier": c.receiver_qualifier,
            "receiver_id": c.receiver_id,
            "date": self._now.strftime("%y%m%d"),
            "time": self._now.strftime("%H%M"),
            "version": c.version,
            "ack_requested": "1" if c.ack_requested else "0",
            "usage": c.usage,
        }
        fields.update({k: str(v) for k, v in given.items() if v is not None and k in fields})
        if given.get("control_number"):
            fields["control_number"] = str(given["control_number"])
        return fields

    def _group(self, record: Record, ts_id: str, isa: dict[str, str]) -> dict[str, str]:
        c = self._c
        given = record.get("group") or {}
        if not isinstance(given, dict):
            raise _Error("`group` must be an object")
        fields = {
            "functional_id": FUNCTIONAL_IDS.get(ts_id, ""),
            "sender": c.application_sender or isa["sender_id"],
            "receiver": c.application_receiver or isa["receiver_id"],
            "date": self._now.strftime("%Y%m%d"),
            "time": self._now.strftime("%H%M"),
            "agency": "X",
            "version": c.group_version,
        }
        fields.update({k: str(v) for k, v in given.items() if v is not None and k in fields})
        if given.get("control_number"):
            fields["control_number"] = str(given["control_number"])
        if not fields["functional_id"]:
            raise _Error(f"no functional group id known for {ts_id}: set group.functional_id")
        return fields

    def _open_interchange(self, isa: dict[str, str]) -> None:
        c = self._c
        number = isa.get("control_number") or str(self._next_isa)
        if not number.isdigit() or len(number) > 9:
            raise _Error(f"interchange control number {number!r} is not 1-9 digits")
        self._next_isa = int(number) + 1
        self._isa_number = number.zfill(9)
        elements = ["ISA"]
        for name, width in _ISA_FIELDS:
            value = isa[name]
            if len(value) > width:
                raise _Error(f"interchange {name} {value!r} is longer than {width} characters")
            elements.append(value.ljust(width))
        version = isa["version"]
        repetition = c.repetition_separator if version >= "00402" else "U"
        elements += [
            repetition,
            version,
            self._isa_number,
            isa["ack_requested"],
            isa["usage"],
            c.component_separator,
        ]
        self._emit(elements)
        self._groups = 0

    def _open_group(self, gs: dict[str, str]) -> None:
        number = gs.get("control_number") or str(self._next_gs)
        if not number.isdigit() or len(number) > 9:
            raise _Error(f"group control number {number!r} is not 1-9 digits")
        self._next_gs = int(number) + 1
        self._gs_number = number
        g = gs
        self._emit(
            ["GS", g["functional_id"], g["sender"], g["receiver"], g["date"], g["time"],
             number, g["agency"], g["version"]]
        )  # fmt: skip
        self._groups += 1
        self._sets = 0

    def _close_group(self) -> None:
        if self._gkey is not None:
            self._emit(["GE", str(self._sets), self._gs_number])
            self._gkey = None

    def _close_interchange(self) -> None:
        self._close_group()
        if self._ikey is not None:
            self._emit(["IEA", str(self._groups), self._isa_number])
            self._ikey = None

    # -- transaction sets ----------------------------------------------------------------

    def write(self, records: Batch) -> None:
        for record in records:
            self._count += 1
            try:
                self._write_set(record)
            except _Error as exc:
                raise CodecError(
                    "x12.unwritable", f"cannot write X12: {exc}", record=self._count
                ) from None

    def _write_set(self, record: Record) -> None:
        ts_id = str(record.get("transaction_set", ""))
        if not (len(ts_id) == 3 and ts_id.isdigit()):
            raise _Error(f"`transaction_set` must be a 3-digit X12 id, got {ts_id!r}")
        segments = record.get("segments")
        if not isinstance(segments, list):
            raise _Error("`segments` must be a list of segments and loops")
        isa = self._interchange(record)
        gs = self._group(record, ts_id, isa)
        self._version = isa["version"]
        lines = [self._segment(where, seg) for where, seg in self._flat(segments)]
        ikey = tuple(sorted(isa.items()))
        gkey = tuple(sorted(gs.items()))
        if ikey != self._ikey:
            self._close_interchange()
            self._open_interchange(isa)
            self._ikey = ikey
        if gkey != self._gkey:
            self._close_group()
            self._open_group(gs)
            self._gkey = gkey
        self._sets += 1
        number = str(record.get("control_number") or f"{self._sets:04d}")
        st = ["ST", ts_id, number]
        if record.get("implementation"):
            st.append(str(record["implementation"]))
        out = [st, *lines, ["SE", str(len(lines) + 2), number]]
        sep = self._c.element_separator
        text = "".join(sep.join(e) + self._term for e in out)
        self._stream.write(text.encode(self._c.encoding))

    @staticmethod
    def _flat(segments: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        try:
            return list(flatten(segments))
        except ValueError as exc:
            raise _Error(str(exc)) from None

    def _segment(self, where: str, segment: dict[str, Any]) -> list[str]:
        try:
            tag, values = segment_to_elements(segment)
        except ValueError as exc:
            raise _Error(f"{where}: {exc}") from None
        elements = [tag]
        for position, value in values:
            elements.extend([""] * (position - len(elements)))
            elements.append(self._render(value, f"{where} ({tag}), element {tag}{position:02d}"))
        return elements

    def _render(self, value: Any, where: str) -> str:
        c = self._c
        if isinstance(value, dict):
            repeats = value.get("repeats")
            if set(value) != {"repeats"} or not isinstance(repeats, list):
                raise _Error(f"{where}: an object value must be {{'repeats': [...]}}")
            if self._version < "00402":
                raise _Error(f"{where}: repeated elements need an interchange version >= 00402")
            return c.repetition_separator.join(self._render(r, where) for r in repeats)
        if isinstance(value, list):
            return c.component_separator.join(self._scalar(v, where) for v in value)
        return self._scalar(value, where)

    def _scalar(self, value: Any, where: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _Error(f"{where}: {value!r} is not a text or number value")
        text = str(value)
        bad = self._forbidden.intersection(text)
        if bad:
            raise _Error(f"{where}: value {text!r} contains the delimiter {min(bad)!r}")
        return text

    def finish(self) -> None:
        self._close_interchange()
