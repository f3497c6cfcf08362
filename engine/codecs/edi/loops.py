"""Segments to JSON-shaped dicts and back, and the nesting of segments into loops.

A segment is ``{"id": "PO1", "PO101": "1", "PO102": "120", ...}``: empty elements are
left out; a composite element is a list of its components (``["HC", "99213"]``); a
repeated element is ``{"repeats": [value, ...]}``. A loop is
``{"loop": "PO1", "segments": [<the PO1 segment>, ...members and nested loops]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from engine.codecs.edi.schemas import LoopSpec
from engine.codecs.edi.tokenizer import Delimiters

__all__ = ["flatten", "nest", "segment_to_dict", "segment_to_elements"]

Value = str | list[str] | dict[str, Any]


def _value(raw: str, d: Delimiters) -> Value:
    if d.repetition is not None and d.repetition in raw:
        return {"repeats": [_component(r, d.component) for r in raw.split(d.repetition)]}
    return _component(raw, d.component)


def _component(raw: str, component: str) -> str | list[str]:
    return raw.split(component) if component in raw else raw


_KEYS: dict[str, list[str]] = {}


def _keys(tag: str) -> list[str]:
    keys = _KEYS.get(tag)
    if keys is None:
        keys = _KEYS[tag] = [tag, *(f"{tag}{i:02d}" for i in range(1, 100))]
    return keys


def segment_to_dict(elements: list[str], d: Delimiters) -> dict[str, Any]:
    """``["N4", "SOLON", "OH"]`` -> ``{"id": "N4", "N401": "SOLON", "N402": "OH"}``."""
    tag = elements[0]
    keys = _keys(tag)
    comp, rep = d.component, d.repetition
    out: dict[str, Any] = {"id": tag}
    for i in range(1, min(len(elements), 100)):
        raw = elements[i]
        if raw:
            if comp in raw or (rep is not None and rep in raw):
                out[keys[i]] = _value(raw, d)
            else:
                out[keys[i]] = raw
    return out


def segment_to_elements(segment: dict[str, Any]) -> tuple[str, list[tuple[int, Value]]]:
    """The tag and the ``(position, value)`` pairs of a segment dict, in position order.

    Raises ValueError (with the offending key) for keys that are not the tag's elements.
    """
    tag = segment.get("id")
    if not isinstance(tag, str) or not (2 <= len(tag) <= 3) or not tag.isalnum():
        raise ValueError(f"segment needs an `id` of 2-3 letters or digits, got {tag!r}")
    values: list[tuple[int, Value]] = []
    for key, value in segment.items():
        if key == "id" or value is None or value == "":
            continue
        suffix = key[len(tag) :] if key.startswith(tag) else ""
        if len(suffix) != 2 or not suffix.isdigit() or suffix == "00":
            raise ValueError(f"key {key!r} is not an element of segment {tag} (e.g. {tag}01)")
        values.append((int(suffix), value))
    values.sort(key=lambda kv: kv[0])
    return tag, values


class _Frame:
    __slots__ = ("hl_id", "items", "spec")

    def __init__(self, spec: LoopSpec, items: list[dict[str, Any]], hl_id: str | None) -> None:
        self.spec = spec
        self.items = items
        self.hl_id = hl_id


def nest(segments: Iterable[dict[str, Any]], schema: LoopSpec) -> list[dict[str, Any]]:
    """Group a transaction set's segments (ST and SE excluded) into loops by ``schema``.

    A segment goes to the innermost open loop that lists it, opening a new loop where it
    is a loop's trigger; a segment no loop lists stays in the innermost open loop.
    """
    root: list[dict[str, Any]] = []
    stack = [_Frame(schema, root, None)]
    for seg in segments:
        tag = seg["id"]
        for depth in range(len(stack) - 1, -1, -1):
            frame = stack[depth]
            child = frame.spec.child_by_trigger.get(tag)
            if child is None and frame.spec.hierarchical and tag == frame.spec.trigger:
                child = frame.spec  # an HL nested in an HL
            if child is not None:
                if child.hierarchical:
                    depth = _hl_parent(stack, depth, child, seg)
                    frame = stack[depth]
                del stack[depth + 1 :]
                items = [seg]
                frame.items.append({"loop": tag, "segments": items})
                hl_id = seg.get(f"{tag}01") if child.hierarchical else None
                stack.append(_Frame(child, items, hl_id if isinstance(hl_id, str) else None))
                break
            if tag in frame.spec.members:
                del stack[depth + 1 :]
                frame.items.append(seg)
                break
        else:
            stack[-1].items.append(seg)
    return root


def _hl_parent(stack: list[_Frame], depth: int, spec: LoopSpec, seg: dict[str, Any]) -> int:
    """Where a new HL goes: inside the open HL whose id is its HL02, else at ``depth``."""
    parent = seg.get(f"{spec.trigger}02")
    if isinstance(parent, str) and parent:
        for at in range(len(stack) - 1, -1, -1):
            if stack[at].spec is spec and stack[at].hl_id == parent:
                return at
    for at, frame in enumerate(stack):
        if frame.spec is spec:
            return at - 1  # a root HL, or one whose parent is not open: beside the outermost
    return depth


def flatten(items: Iterable[Any], path: str = "segments") -> Iterator[tuple[str, dict[str, Any]]]:
    """The segments of a nested list in order, with a JSON-path-like location of each."""
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a segment or loop object, got {item!r}")
        if "loop" in item:
            inner = item.get("segments")
            if not isinstance(inner, list):
                raise ValueError(f"{where}: a loop needs a `segments` list")
            yield from flatten(inner, f"{where}.segments")
        else:
            yield where, item
