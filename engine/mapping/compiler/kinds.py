"""Static kinds of generated values: what a value can possibly be, known at generation time.

Shared by the code generator and the function-call emitters, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANY",
    "BOOL",
    "DICT",
    "IMMUTABLE",
    "LIST",
    "NONE",
    "NULL",
    "NUM",
    "OTHER",
    "STR",
    "Kind",
    "Node",
    "Val",
    "kind_of",
]

Node = dict[str, Any]
Kind = frozenset[str]

ANY: Kind = frozenset({"dict", "list", "str", "num", "bool", "null", "other"})
DICT: Kind = frozenset({"dict"})
LIST: Kind = frozenset({"list"})
STR: Kind = frozenset({"str"})
NUM: Kind = frozenset({"num"})
BOOL: Kind = frozenset({"bool"})
NULL: Kind = frozenset({"null"})
OTHER: Kind = frozenset({"other"})
IMMUTABLE: Kind = frozenset({"str", "num", "bool", "null"})


@dataclass(frozen=True, slots=True)
class Val:
    """A generated value: ``code`` is a local name or a literal, cheap to repeat."""

    code: str
    kind: Kind


NONE = Val("None", NULL)


def kind_of(value: Any) -> Kind:
    """The static kind of a constant."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUM
    if isinstance(value, str):
        return STR
    if isinstance(value, list):
        return LIST
    return DICT if isinstance(value, dict) else OTHER
