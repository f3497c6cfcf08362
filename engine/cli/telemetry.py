"""The metrics and traces options of the commands that run pipelines.

Light to import (click only): the telemetry itself is loaded when a command runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import click

from engine.cli.environment import current_settings
from engine.cli.output import err_console

if TYPE_CHECKING:
    from engine.telemetry.session import TelemetrySession

__all__ = ["metrics_options", "telemetry_session", "warn"]

F = TypeVar("F", bound=Callable[..., object])


def _gateway(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"not an http(s) URL: {value!r}")
    return value


def metrics_options(command: F) -> F:
    """``--metrics-file`` and ``--pushgateway``, for batch runs."""
    command = click.option(
        "--pushgateway",
        metavar="URL",
        callback=_gateway,
        help="Push the run's metrics to this Prometheus Pushgateway at the end "
        "(job=engine, grouping key pipeline).",
    )(command)
    return click.option(
        "--metrics-file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="PATH",
        help="Write the run's metrics to PATH in the textfile-collector format (atomically: "
        "every few seconds and at the end).",
    )(command)


def warn(line: str) -> None:
    err_console.print(f"warning: {line}", markup=False, soft_wrap=True)


def telemetry_session(
    pipeline: str, metrics_file: Path | None = None, pushgateway: str | None = None
) -> TelemetrySession:
    """The command's metrics and traces; problems exporting them are warnings."""
    from engine.telemetry.session import TelemetrySession

    return TelemetrySession(
        pipeline,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        settings=current_settings(),
        warn=warn,
    )
