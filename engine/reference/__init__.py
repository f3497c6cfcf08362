"""The option reference: every kind's and codec's options, rendered from their models."""

from __future__ import annotations

from engine.reference.pages import (
    REFERENCE_DIR,
    codec_section,
    component_section,
    render_reference,
    stale_pages,
)

__all__ = [
    "REFERENCE_DIR",
    "codec_section",
    "component_section",
    "render_reference",
    "stale_pages",
]
