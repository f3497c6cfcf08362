"""Loop structures of the X12 transaction sets the codec nests (810, 830, 846, 850, 855, 856, 997).

A loop is named by the segment that opens it (``PO1``, ``N1``, ``HL``) and lists the other
segments it holds plus its nested loops. Sets without a schema decode flat. The 830 is
taken from pyedi830's definitions when that package is installed.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["LoopSpec", "element_labels", "schema_for"]


@dataclass(frozen=True)
class LoopSpec:
    """A loop: opened by ``trigger``, holding ``members`` and nested ``children`` loops."""

    trigger: str
    members: frozenset[str]
    children: tuple[LoopSpec, ...] = ()
    hierarchical: bool = False  # HL loops nest by HL02 (parent id)
    child_by_trigger: dict[str, LoopSpec] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "child_by_trigger", {c.trigger: c for c in self.children})


def _loop(trigger: str, members: str = "", *children: LoopSpec, hl: bool = False) -> LoopSpec:
    return LoopSpec(trigger, frozenset(members.split()), tuple(children), hl)


_TD = "TD1 TD5 TD3 TD4 MAN"
_NAME = _loop("N1", "N2 N3 N4 NX2 REF PER SI FOB DMG " + _TD)

_SCHEMAS: dict[str, LoopSpec] = {
    "850": _loop(
        "ST",
        "BEG CUR REF PER TAX FOB CTP PAM CSH TC2 ITD DIS INC DTM LDT LIN SI PWK PKG MEA "
        + _TD
        + " PCT CTB TXI AMT",
        _loop("SAC", "CUR"),
        _loop("PID", "MEA"),
        _loop("N9", "DTM MSG"),
        _NAME,
        _loop("LM", "LQ"),
        _loop("SPI", "REF DTM MSG"),
        _loop(
            "PO1",
            "LIN SI CUR CN1 PO3 CTP PAM MEA PWK PO4 REF PER IT8 CSH ITD DIS INC TAX FOB SDQ "
            "IT3 DTM TC2 TD1 TD5 TD3 TD4 PCT MAN MSG SPI TXI CTB QTY",
            _loop("PID", "MEA"),
            _loop("SAC", "CUR CTP"),
            _loop("SCH", "TD1 TD5 TD3 TD4 REF"),
            _loop("N9", "DTM MSG"),
            _NAME,
            _loop("SLN", "MSG SI PID PO3 TC2 ADV DTM CTP PAM PO4 TAX REF"),
            _loop("AMT", "REF PCT"),
        ),
        _loop("CTT", "AMT"),
    ),
    "855": _loop(
        "ST",
        "BAK CUR REF PER TAX FOB CTP PAM CSH SAC ITD DIS INC DTM LDT LIN SI PID MEA PWK "
        "PKG " + _TD + " PCT TXI CTB",
        _loop("N9", "DTM MSG"),
        _NAME,
        _loop(
            "PO1",
            "LIN SI CUR CN1 PO3 CTP PAM MEA PWK PO4 REF PER SAC IT8 CSH ITD DIS INC TAX FOB "
            "SDQ IT3 DTM TC2 TD1 TD5 TD3 TD4 PCT MAN MSG SPI TXI CTB",
            _loop("PID", "MEA"),
            _loop("ACK", "DTM"),
            _loop("SCH", "TD1 TD5 TD3 TD4 REF"),
            _NAME,
            _loop("SLN", "MSG SI PID PO3 ACK DTM CTP PAM PO4 TAX REF"),
        ),
        _loop("CTT", "AMT"),
    ),
    "810": _loop(
        "ST",
        "BIG NTE CUR REF YNQ PER ITD DTM FOB PID MEA PWK PKG L7 BAL INC PAM CRC TDS TXI CAD AMT",
        _loop("N9", "DTM MSG"),
        _NAME,
        _loop("LM", "LQ"),
        _loop(
            "IT1",
            "CRC QTY CUR IT3 TXI CTP PAM MEA PWK PKG PO4 ITD REF YNQ PER IT8 DTM CAD L7 SR "
            "FOB SDQ DIN",
            _loop("PID", "MEA"),
            _loop("SAC", "TXI"),
            _loop("SLN", "DTM REF PID PO3 TCD SAC TXI"),
            _NAME,
            _loop("LM", "LQ"),
        ),
        _loop("SAC", "TXI"),
        _loop("ISS", "PID"),
        _loop("CTT", "AMT"),
    ),
    "856": _loop(
        "ST",
        "BSN DTM CTT",
        _loop(
            "HL",
            "LIN SN1 SLN PRF PO4 PID MEA PWK PKG TD1 TD5 TD3 TD4 REF PER LH1 LH2 LH3 LFH LEP "
            "LH4 LHT LHR CLD MAN DTM FOB PAL N9 SOM YNQ GF CUR SAC TXI",
            _NAME,
            hl=True,
        ),
    ),
    "846": _loop(
        "ST",
        "BIA CUR REF PER MEA PSC DTM",
        _NAME,
        _loop(
            "LIN",
            "SI PID DTM MEA PER CTP PO3 PO4 REF MAN SAC TXI",
            _loop("QTY", "UIT DTM SCH LS LE N1 N3 N4 REF"),
            _NAME,
            _loop("SLN", "PID QTY DTM REF"),
        ),
        _loop("CTT", "AMT"),
    ),
    "997": _loop(
        "ST",
        "AK1 AK9",
        _loop("AK2", "AK5", _loop("AK3", "AK4")),
    ),
    "999": _loop(
        "ST",
        "AK1 AK9",
        _loop("AK2", "IK5", _loop("IK3", "IK4 CTX")),
    ),
}

_830_FALLBACK = _loop(
    "ST",
    "BFR XPO CUR REF PER TAX FOB CTP PAM CSH SAC ITD DTM PID MEA PWK PKG " + _TD + " CTT",
    _NAME,
    _loop("LM", "LQ"),
    _loop(
        "LIN",
        "UIT DTM CUR PO3 CTP PID MEA PWK PKG PO4 PRS REF PER SAC ITD TD1 TD5 TD3 TD4 MAN DIS "
        "CTB TAX",
        _loop("QTY", "SI"),
        _NAME,
        _loop("LM", "LQ"),
        _loop("SDP", "FST"),
        _loop("FST", "QTY SDQ", _loop("LM", "LQ")),
        _loop("SHP", "REF"),
    ),
)

_ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})


def _pyedi830_formats() -> Path | None:
    # Located without importing the package: its __init__ pulls in pandas and PDF tools.
    spec = importlib.util.find_spec("pyedi830")
    if spec is None or not spec.submodule_search_locations:
        return None
    formats = Path(next(iter(spec.submodule_search_locations))) / "formats"
    return formats if formats.is_dir() else None


def _from_pyedi830(items: list[dict[str, Any]], trigger: str) -> LoopSpec:
    members: set[str] = set()
    children: list[LoopSpec] = []
    for item in items:
        if item.get("type") == "loop":
            segments = item["segments"]
            if len(segments) == 1 and segments[0].get("type") == "segment":
                members.add(segments[0]["id"])  # a one-segment loop is just a repeat
            else:
                children.append(_from_pyedi830(segments[1:], segments[0]["id"]))
        elif item["id"] not in _ENVELOPE:
            members.add(item["id"])
    return LoopSpec(trigger, frozenset(members), tuple(children))


@cache
def _830() -> LoopSpec:
    formats = _pyedi830_formats()
    if formats is None:
        return _830_FALLBACK
    items = json.loads((formats / "830_Forecast.json").read_text(encoding="utf-8"))
    # pyedi830 builds its 830 on its 810 (BIG, IT1, TDS...): only what it adds is the 830's.
    invoice = json.loads((formats / "810.json").read_text(encoding="utf-8"))
    forecast = [item for item in items if item not in invoice]
    # pyedi830 knows the forecast loops (LIN > FST > SDQ); the general 830 adds the rest.
    return _merge(_830_FALLBACK, _from_pyedi830(forecast, "ST"))


def _merge(a: LoopSpec, b: LoopSpec) -> LoopSpec:
    children = dict(a.child_by_trigger)
    for trigger, child in b.child_by_trigger.items():
        children[trigger] = _merge(children[trigger], child) if trigger in children else child
    return LoopSpec(a.trigger, a.members | b.members, tuple(children.values()), a.hierarchical)


def schema_for(transaction_set: str) -> LoopSpec | None:
    """The loop structure of a transaction set, or None to decode its segments flat."""
    if transaction_set == "830":
        return _830()
    return _SCHEMAS.get(transaction_set)


@cache
def element_labels(definition: str = "830_Forecast") -> dict[str, str]:
    """Element names (``{"FST01": "Quantity", ...}``) from a pyedi830 definition.

    Empty when pyedi830 is not installed. Definitions: ``830_Forecast``, ``830``, ``810``.
    """
    formats = _pyedi830_formats()
    if formats is None or not (formats / f"{definition}.json").is_file():
        return {}
    labels: dict[str, str] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("type") == "loop":
                walk(item["segments"])
            for element in item.get("elements", ()):
                labels.setdefault(element["id"], element.get("short_name") or element["name"])

    walk(json.loads((formats / f"{definition}.json").read_text(encoding="utf-8")))
    return labels
