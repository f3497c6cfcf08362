"""The ``[schedule]`` table: when `engine serve` runs a pipeline on its own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Missed", "ScheduleSettings", "parse_interval"]

_INTERVAL = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_interval(text: str) -> timedelta:
    """``"10m"``, ``"1h30m"``, ``"2s"`` or ``"500ms"`` as a timedelta; ValueError otherwise."""
    compact = text.replace(" ", "")
    parts = _INTERVAL.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f'{text!r}: give a duration such as "30s", "10m", "1h30m" or "1d"')
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds < 1:
        raise ValueError(f"{text!r}: a schedule fires at most once a second")
    return timedelta(seconds=seconds)


class Missed(StrEnum):
    """What a scheduler does with fire times that passed while no scheduler could run them."""

    SKIP = "skip"
    CATCH_UP = "catch_up"


class ScheduleSettings(BaseModel):
    """The ``[schedule]`` table: `engine serve` runs the pipeline at these times, once each
    across every scheduler sharing the state store, never two runs of it at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str | None = Field(
        None,
        description="A cron expression: 5 fields (minute hour day month weekday), or 6 with "
        "seconds first. Read in `timezone`.",
        examples=["*/5 * * * *", "0 2 * * mon-fri", "*/10 * * * * *"],
    )
    interval: str | None = Field(
        None,
        description="Or a fixed interval, counted from the Unix epoch so every scheduler "
        "agrees on the fire times.",
        examples=["30s", "10m", "1h30m", "1d"],
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone the cron expression is read in (daylight saving time "
        "included: a time that does not exist fires at the next one that does).",
        examples=["UTC", "Europe/Paris", "America/New_York"],
    )
    missed: Missed = Field(
        Missed.SKIP,
        description="Fire times that passed while no scheduler ran (or while a run of the "
        "pipeline was still going): `skip` runs the latest of them once, `catch_up` runs each, "
        "oldest first, up to `catch_up_limit`.",
    )
    catch_up_limit: int = Field(
        100, ge=1, description='With `missed = "catch_up"`, the most missed fire times run.'
    )

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (an aware time), in UTC."""
        if self.interval is not None:
            step = round(parse_interval(self.interval).total_seconds() * 1000)
            at = int(after.timestamp() * 1000)
            return datetime.fromtimestamp((at // step + 1) * step / 1000, UTC)
        from croniter import croniter

        assert self.cron is not None
        local = after.astimezone(ZoneInfo(self.timezone))
        it = croniter(self.cron, local, second_at_beginning=len(self.cron.split()) == 6)
        fire: datetime = it.get_next(datetime)
        return fire.astimezone(UTC)

    def due(self, after: datetime, now: datetime) -> list[datetime]:
        """The fire times in (after, now], oldest first: the newest ``catch_up_limit`` of them."""
        times: list[datetime] = []
        fire = self.next_fire(after)
        while fire <= now:
            times.append(fire)
            if len(times) > self.catch_up_limit:
                del times[0]
            fire = self.next_fire(fire)
        return times

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from croniter import croniter  # only a file with a schedule pays for it

        fields = value.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(
            value, second_at_beginning=len(fields) == 6
        ):
            raise ValueError(
                f"{value!r} is not a cron expression: give 5 fields (minute hour day month "
                "weekday) or 6 with seconds first"
            )
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            parse_interval(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (such as Europe/Paris)") from None
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleSettings:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give either `cron` or `interval`")
        return self
