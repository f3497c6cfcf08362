"""Small inline SVG charts, generated in Python: no script, no fonts, no network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "column_chart"]

_W = 560
_PALETTE = ("#2563eb", "#16a34a", "#ca8a04", "#ea580c", "#dc2626", "#7c3aed")


def column_chart(
    title: str, points: Sequence[tuple[str, float]], *, colors: Sequence[str] | None = None
) -> str:
    """Vertical bars with their labels under them (e.g. events per day, per risk band)."""
    height, top, bottom, left = 220, 28, 46, 40
    inner_h = height - top - bottom
    n = max(1, len(points))
    slot = (_W - left - 10) / n
    peak = max((v for _, v in points), default=0) or 1
    parts = [_open(title, height), _text(left, 18, title, size=13, weight="bold")]
    parts.append(
        f'<line x1="{left}" y1="{top + inner_h}" x2="{_W - 10}" y2="{top + inner_h}" '
        'stroke="#94a3b8"/>'
    )
    parts.append(_text(left - 6, top + 8, _fmt(peak), anchor="end"))
    parts.append(_text(left - 6, top + inner_h, "0", anchor="end"))
    every = max(1, n // 12)  # at most ~12 labels
    for i, (label, value) in enumerate(points):
        h = inner_h * value / peak
        x = left + i * slot + slot * 0.15
        color = (colors or _PALETTE)[i % len(colors or _PALETTE)] if colors else _PALETTE[0]
        parts.append(
            f'<rect x="{x:.1f}" y="{top + inner_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: {_fmt(value)}</title></rect>'
        )
        if value:
            parts.append(
                _text(x + slot * 0.35, top + inner_h - h - 3, _fmt(value), anchor="middle")
            )
        if i % every == 0:
            parts.append(_text(x + slot * 0.35, top + inner_h + 14, label[-10:], anchor="middle"))
    if not points:
        parts.append(_text(_W / 2, top + inner_h / 2, "no data", anchor="middle"))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, points: Sequence[tuple[str, float]], *, color: str = "#dc2626") -> str:
    """Horizontal bars with labels on the left (e.g. findings per rule)."""
    row, top, label_w = 22, 30, 250
    height = top + row * max(1, len(points)) + 12
    peak = max((v for _, v in points), default=0) or 1
    parts = [_open(title, height), _text(4, 18, title, size=13, weight="bold")]
    for i, (label, value) in enumerate(points):
        y = top + i * row
        w = (_W - label_w - 50) * value / peak
        parts.append(_text(label_w - 6, y + 14, label[:40], anchor="end"))
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{color}"><title>{escape(label)}: {_fmt(value)}</title></rect>'
        )
        parts.append(_text(label_w + w + 4, y + 14, _fmt(value)))
    if not points:
        parts.append(_text(_W / 2, top + 10, "no findings", anchor="middle"))
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif">'
    )


def _text(
    x: float, y: float, text: str, *, size: int = 11, anchor: str = "start", weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="#1e293b">{escape(text)}</text>'
    )


def _fmt(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))
