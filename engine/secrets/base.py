"""What a secrets backend is given and must offer (see :mod:`engine.secrets`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.errors import EngineError
from engine.settings import EngineSettings

__all__ = ["ResolverFactory", "SecretResolver", "SecretsContext", "SecretsError"]


class SecretsError(EngineError):
    """A backend cannot be opened or read (never carries a secret value)."""


@dataclass(frozen=True)
class SecretsContext:
    """What a backend is opened with: the pipeline's workspace and its environment."""

    workspace: Path
    settings: EngineSettings
    environ: Mapping[str, str]


class SecretResolver(Protocol):
    """Gives the value of ``NAME:key``, or None when the backend has no such secret."""

    def get(self, name: str, key: str) -> str | None: ...


ResolverFactory = Callable[[SecretsContext], SecretResolver]
