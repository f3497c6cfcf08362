"""ISA/GS/ST envelopes: groups segments into interchanges and checks counts and numbers.

Problems that leave the segments readable (wrong SE01/GE01/IEA01 counts, control numbers
that differ between header and trailer, a missing trailer, a bad GS date) are collected
as :class:`Issue` objects with the X12 acknowledgment code that reports them, so a strict
reader can refuse the interchange and a 997 can say what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from engine.codecs.edi.tokenizer import Delimiters, Segment, Tokenizer
from engine.errors import DataError

__all__ = ["Group", "Interchange", "Issue", "TransactionSet", "read_interchanges"]

_TAG = re.compile(r"^[A-Z0-9]{2,3}$")
_DIGITS = re.compile(r"^[0-9]+$")
_TIME = re.compile(r"^([01][0-9]|2[0-3])[0-5][0-9]([0-5][0-9][0-9]{0,2})?$")
_DATE8 = re.compile(r"^[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$")
_DATE6 = re.compile(r"^[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$")


@dataclass(frozen=True, slots=True)
class Issue:
    """A located envelope problem; ``code`` is the AK5 (set) or AK9 (group) error code."""

    level: Literal["interchange", "group", "set"]
    code: str
    message: str
    segment: Segment
    element: str | None = None

    @property
    def where(self) -> str:
        tag = self.segment.elements[0]
        text = f"segment {self.segment.position}" + (f" ({tag})" if tag else "")
        return f"{text}, element {self.element}" if self.element else text

    def error(self, source: str) -> DataError:
        return DataError(f"{self.where}: {self.message}", source=source, line=self.segment.line)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(slots=True)
class TransactionSet:
    header: Segment
    segments: list[Segment] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    trailer: Segment | None = None


@dataclass(slots=True)
class Group:
    header: Segment
    sets: list[TransactionSet] = field(default_factory=list)
    trailer: Segment | None = None
    issues: list[Issue] = field(default_factory=list)


@dataclass(slots=True)
class Interchange:
    header: Segment
    delimiters: Delimiters
    groups: list[Group] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    #: TA1 interchange acknowledgments it carries (between its functional groups)
    acks: list[Segment] = field(default_factory=list)
    trailer: Segment | None = None

    def segments(self) -> Iterator[Segment]:
        """Its segments in order (TA1s first), for writing it out again whole."""
        yield self.header
        yield from self.acks
        for group in self.groups:
            yield group.header
            for ts in group.sets:
                yield ts.header
                yield from ts.segments
                if ts.trailer is not None:
                    yield ts.trailer
            if group.trailer is not None:
                yield group.trailer
        if self.trailer is not None:
            yield self.trailer

    def all_issues(self) -> Iterator[Issue]:
        yield from self.issues
        for group in self.groups:
            yield from group.issues
            for ts in group.sets:
                yield from ts.issues


def _element(seg: Segment, n: int) -> str:
    return seg.elements[n] if n < len(seg.elements) else ""


def _check_count(
    issues: list[Issue],
    level: Literal["interchange", "group", "set"],
    code: str,
    trailer: Segment,
    element: str,
    actual: int,
    what: str,
) -> None:
    declared = _element(trailer, 1)
    if declared != str(actual) and (not declared.isdigit() or int(declared) != actual):
        issues.append(
            Issue(
                level,
                code,
                f"declares {declared or 'no'} {what} but there are {actual}",
                trailer,
                element,
            )
        )


def _check_control(
    issues: list[Issue],
    level: Literal["interchange", "group", "set"],
    code: str,
    trailer: Segment,
    element: str,
    header: Segment,
    header_element: str,
    at: int,
) -> None:
    expected = _element(header, at)
    got = _element(trailer, 2)
    if got.strip() != expected.strip():
        issues.append(
            Issue(
                level,
                code,
                f"control number {got!r} does not match {header_element} {expected!r}",
                trailer,
                element,
            )
        )


def _check_gs(group: Group) -> None:
    gs = group.header
    if len(gs.elements) < 9:
        group.issues.append(
            Issue("group", "1", f"GS has {len(gs.elements) - 1} elements, expected 8", gs)
        )
        return
    date, time, number = gs.elements[4], gs.elements[5], gs.elements[6]
    if not (_DATE8.match(date) or _DATE6.match(date)):
        group.issues.append(Issue("group", "1", f"date {date!r} is not CCYYMMDD", gs, "GS04"))
    if not _TIME.match(time):
        group.issues.append(Issue("group", "1", f"time {time!r} is not HHMM[SS[dd]]", gs, "GS05"))
    if not _DIGITS.match(number) or len(number) > 9:
        group.issues.append(
            Issue("group", "4", f"control number {number!r} is not 1-9 digits", gs, "GS06")
        )


def read_interchanges(tokens: Tokenizer) -> Iterator[Interchange]:
    """Interchanges of a stream, each whole with the issues found; structure errors raise."""
    source = tokens.source
    ich: Interchange | None = None
    group: Group | None = None
    ts: TransactionSet | None = None

    def close_set(at: Segment) -> None:
        nonlocal ts
        if ts is not None and group is not None:
            ts.issues.append(
                Issue(
                    "set",
                    "2",
                    f"transaction set {_element(ts.header, 2)!r} has no SE "
                    f"trailer before {at.elements[0]}",
                    at,
                )
            )
            group.sets.append(ts)
        ts = None

    def close_group(at: Segment) -> None:
        nonlocal group
        close_set(at)
        if group is not None and ich is not None:
            group.issues.append(
                Issue(
                    "group",
                    "2",
                    f"group {_element(group.header, 6)!r} has no GE trailer "
                    f"before {at.elements[0]}",
                    at,
                )
            )
            ich.groups.append(group)
        group = None

    previous: Segment | None = None
    for seg in tokens:
        previous = seg
        tag = seg.elements[0]
        if not tag and ich is not None:
            message = "empty segment: two segment terminators in a row"
            if ts is not None:
                ts.issues.append(Issue("set", "5", message, seg))
            else:
                ich.issues.append(Issue("interchange", "024", message, seg))
            continue
        if ts is not None and tag not in ("SE", "ST", "GE", "GS", "IEA", "ISA"):
            if not _TAG.match(tag):
                raise DataError(
                    f"segment {seg.position}: {tag[:20]!r} is not a segment id (2-3 letters or "
                    "digits); is the segment terminator right?",
                    source=source,
                    line=seg.line,
                )
            ts.segments.append(seg)
            continue
        if tag == "ISA":
            if ich is not None:
                close_group(seg)
                ich.issues.append(
                    Issue(
                        "interchange",
                        "023",
                        "interchange has no IEA trailer before the next ISA",
                        seg,
                    )
                )
                yield ich
            assert tokens.delimiters is not None
            ich = Interchange(seg, tokens.delimiters)
            number = _element(seg, 13)
            if not (_DIGITS.match(number) and len(number) == 9):
                ich.issues.append(
                    Issue(
                        "interchange",
                        "018",
                        f"control number {number!r} is not 9 digits",
                        seg,
                        "ISA13",
                    )
                )
        elif ich is None:
            raise DataError(
                f"segment {seg.position} ({tag}) outside an interchange",
                source=source,
                line=seg.line,
            )
        elif tag == "GS":
            close_group(seg)
            group = Group(seg)
            _check_gs(group)
        elif tag == "ST":
            if group is None:
                raise DataError(
                    f"segment {seg.position} (ST) outside a functional group (no GS)",
                    source=source,
                    line=seg.line,
                )
            close_set(seg)
            ts = TransactionSet(seg)
            if not _TAG.match(_element(seg, 1)) or not _element(seg, 2):
                ts.issues.append(
                    Issue(
                        "set",
                        "6",
                        "ST needs a transaction set id and a control number",
                        seg,
                        "ST01",
                    )
                )
        elif tag == "SE":
            if ts is None or group is None:
                raise DataError(
                    f"segment {seg.position} (SE) without an ST", source=source, line=seg.line
                )
            _check_count(ts.issues, "set", "4", seg, "SE01", len(ts.segments) + 2, "segments")
            _check_control(ts.issues, "set", "3", seg, "SE02", ts.header, "ST02", 2)
            ts.trailer = seg
            group.sets.append(ts)
            ts = None
        elif tag == "GE":
            if group is None:
                raise DataError(
                    f"segment {seg.position} (GE) without a GS", source=source, line=seg.line
                )
            close_set(seg)
            group.trailer = seg
            _check_count(
                group.issues, "group", "5", seg, "GE01", len(group.sets), "transaction sets"
            )
            _check_control(group.issues, "group", "4", seg, "GE02", group.header, "GS06", 6)
            ich.groups.append(group)
            group = None
        elif tag == "TA1" and group is None:
            ich.acks.append(seg)
        elif tag == "IEA":
            close_group(seg)
            ich.trailer = seg
            _check_count(
                ich.issues, "interchange", "021", seg, "IEA01", len(ich.groups), "functional groups"
            )
            _check_control(ich.issues, "interchange", "001", seg, "IEA02", ich.header, "ISA13", 13)
            yield ich
            ich = None
        else:
            raise DataError(
                f"segment {seg.position} ({tag[:20]}) between transaction sets: "
                "expected ST, GE, GS, TA1 or IEA",
                source=source,
                line=seg.line,
            )
    if ich is not None and previous is not None:
        close_group(previous)
        ich.issues.append(
            Issue(
                "interchange",
                "023",
                f"input ends inside the interchange {_element(ich.header, 13)!r} (no IEA)",
                previous,
            )
        )
        yield ich
