"""997 functional acknowledgments for received interchanges.

One 997 record per functional group received: AK1 names the group, one AK2 loop per
transaction set with its AK5 verdict (``A`` accepted, ``R`` rejected with the AK5 error
codes), and AK9 the group's verdict and counts. Write the records with the ``edi`` codec.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from engine.codecs.edi.envelope import Group, Interchange, read_interchanges
from engine.codecs.edi.tokenizer import Tokenizer
from engine.records import Record

__all__ = ["acknowledge", "acknowledgments"]


def acknowledgments(
    stream: BinaryIO, *, source: str = "<edi>", encoding: str = "utf-8"
) -> Iterator[Record]:
    """997 records for every functional group of the interchanges in ``stream``.

    Count and control-number problems become rejections in the 997; input whose
    structure cannot be read raises :class:`engine.errors.DataError`.
    """
    for interchange in read_interchanges(Tokenizer(stream, source=source, encoding=encoding)):
        for group in interchange.groups:
            yield acknowledge(interchange, group)


def _isa(interchange: Interchange, n: int) -> str:
    elements = interchange.header.elements
    return elements[n].strip() if n < len(elements) else ""


def _gs(group: Group, n: int) -> str:
    elements = group.header.elements
    return elements[n] if n < len(elements) else ""


def acknowledge(interchange: Interchange, group: Group) -> Record:
    """The 997 for one received group, addressed back to its sender."""
    sets: list[dict[str, Any]] = []
    accepted = 0
    for ts in group.sets:
        st = ts.header.elements
        ak2: dict[str, Any] = {"id": "AK2", "AK201": st[1] if len(st) > 1 else ""}
        if len(st) > 2 and st[2]:
            ak2["AK202"] = st[2]
        if len(st) > 3 and st[3]:
            ak2["AK203"] = st[3]
        codes = list(dict.fromkeys(issue.code for issue in ts.issues))[:5]
        ak5: dict[str, Any] = {"id": "AK5", "AK501": "R" if codes else "A"}
        for i, code in enumerate(codes, start=2):
            ak5[f"AK50{i}"] = code
        accepted += not codes
        sets.append({"loop": "AK2", "segments": [ak2, ak5]})

    group_codes = list(dict.fromkeys(issue.code for issue in group.issues))[:5]
    received = len(group.sets)
    declared = received
    if group.trailer is not None and group.trailer.elements[1:2] != [""]:
        text = group.trailer.elements[1]
        declared = int(text) if text.isdigit() else received
    if group_codes or (received and not accepted):
        verdict = "R"
    elif accepted < received:
        verdict = "P"
    else:
        verdict = "A"
    ak9: dict[str, Any] = {
        "id": "AK9",
        "AK901": verdict,
        "AK902": str(declared),
        "AK903": str(received),
        "AK904": str(accepted),
    }
    for i, code in enumerate(group_codes, start=5):
        ak9[f"AK90{i}"] = code

    ak1: dict[str, Any] = {"id": "AK1", "AK101": _gs(group, 1), "AK102": _gs(group, 6)}
    version = _gs(group, 8)
    if version >= "005010":
        ak1["AK103"] = version
    return {
        "interchange": {
            "sender_qualifier": _isa(interchange, 7),
            "sender_id": _isa(interchange, 8),
            "receiver_qualifier": _isa(interchange, 5),
            "receiver_id": _isa(interchange, 6),
            "version": _isa(interchange, 12),
        },
        "group": {
            "functional_id": "FA",
            "sender": _gs(group, 3),
            "receiver": _gs(group, 2),
            "version": version,
        },
        "transaction_set": "997",
        "segments": [ak1, *sets, ak9],
    }
