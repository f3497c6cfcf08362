"""Command groups whose subcommands are imported only when one is run.

`engine --version`, `engine --help` and shell completion list the commands by name and
one-line help without importing them, so they stay fast: a command's module may import the
audit store, SQLAlchemy or a web server, and only running that command pays for it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import cast

import click
from click.shell_completion import CompletionItem

__all__ = ["LazyCommand", "LazyGroup"]


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a command lives (``"module:attribute"``) and its one-line help, shown unloaded."""

    target: str
    short_help: str

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        # a test loads every lazy command of the CLI, so a wrong target fails there
        return cast(click.Command, getattr(importlib.import_module(module), attribute))


class LazyGroup(click.Group):
    """A group that also holds :class:`LazyCommand` entries, imported on first use."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy: dict[str, LazyCommand] = {}

    def add_lazy(self, name: str, target: str, short_help: str) -> None:
        self.lazy[name] = LazyCommand(target, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, lazy commands described without loading them."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)  # as click's own
        rows = []
        for name in names:
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, self.lazy[name].short_help))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (and their help) without importing the commands, then options."""
        items = [
            CompletionItem(name, help=help_)
            for name, help_ in self._short_helps().items()
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def _short_helps(self) -> dict[str, str]:
        helps = {
            name: command.get_short_help_str()
            for name, command in self.commands.items()
            if not command.hidden
        }
        for name, entry in self.lazy.items():
            helps.setdefault(name, entry.short_help)
        return dict(sorted(helps.items()))
