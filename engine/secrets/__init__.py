"""``${secret:NAME:key}`` in pipeline files: resolvers found through entry points.

A backend is a factory registered under the ``engine.secrets`` entry point group: called with a
:class:`SecretsContext`, it returns a :class:`SecretResolver`. ``ENGINE_SECRETS_BACKEND`` picks
one by its entry point name (default ``file``, the encrypted file in the workspace). Values
never appear in a message: errors name the secret and the backend only.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.secrets.base import ResolverFactory, SecretResolver, SecretsContext, SecretsError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ResolverFactory",
    "SecretResolver",
    "SecretsContext",
    "SecretsError",
    "backend_names",
    "open_resolver",
]

ENTRY_POINT_GROUP = "engine.secrets"


def _factories() -> dict[str, Callable[[], ResolverFactory]]:
    """Backend name -> loader of its factory; the shipped ``file`` backend is always there."""
    from importlib.metadata import entry_points  # only when a file names a secret

    def shipped() -> ResolverFactory:
        from engine.secrets.file import FileSecrets

        return FileSecrets

    found: dict[str, Callable[[], ResolverFactory]] = {"file": shipped}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found[point.name] = point.load
    return found


def backend_names() -> list[str]:
    return sorted(_factories())


def open_resolver(context: SecretsContext) -> SecretResolver:
    """The resolver of the backend ``ENGINE_SECRETS_BACKEND`` names."""
    name = context.settings.engine_secrets_backend
    factories = _factories()
    if name not in factories:
        raise SecretsError(
            f"unknown secrets backend {name!r} (ENGINE_SECRETS_BACKEND); "
            f"installed: {', '.join(sorted(factories))}"
        )
    try:
        factory = factories[name]()
    except Exception as exc:  # a plug-in that does not import: name it, not its traceback
        raise SecretsError(f"secrets backend {name!r} cannot be loaded: {exc}") from None
    return factory(context)
