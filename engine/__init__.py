"""A declarative integration engine with a signed, verifiable audit trail."""

from __future__ import annotations

from engine.errors import (
    ConfigError,
    DataError,
    Diagnostic,
    EngineError,
    PermanentError,
    RunError,
    TransientError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "Diagnostic",
    "EngineError",
    "PermanentError",
    "RunError",
    "TransientError",
    "__version__",
]
