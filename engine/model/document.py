"""The pipeline file's own tables, and the whole-file model the JSON Schema comes from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from engine.components.base import Role
from engine.model.audit import AuditSettings
from engine.model.schedule import ScheduleSettings
from engine.model.state import StateSettings
from engine.registry import Registry

__all__ = [
    "TOP_LEVEL_KEYS",
    "DeadLetterSettings",
    "PipelineMeta",
    "TestCase",
    "TestExpectation",
    "TestInput",
    "pipeline_model",
]

NAME_PATTERN = r"^[a-z0-9_-]+$"


class PipelineMeta(BaseModel):
    """The ``[pipeline]`` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=128,
        description="Pipeline name: lower case, digits, _ and -.",
    )
    description: str = Field("", description="What this integration does.")
    owner: str | None = Field(None, description="Who answers for this pipeline.")
    tags: list[str] = Field(
        default_factory=list,
        description="Labels such as `personal_data` or `phi` that compliance rules look at.",
    )
    purpose: str | None = Field(
        None,
        description="Why the data is processed (GDPR Art. 30); required in spirit when "
        "tagged `personal_data`.",
        examples=["order fulfilment"],
    )
    data_categories: list[str] = Field(
        default_factory=list,
        description="Categories of personal data handled (GDPR Art. 30).",
        examples=[["contact details", "order history"]],
    )
    retention_days: int | None = Field(
        None, ge=1, description="How long the processed personal data is kept, in days."
    )


class DeadLetterSettings(BaseModel):
    """The ``[dead_letter]`` table: where records routed with ``on_error = "dead_letter"`` go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str | None = Field(
        None,
        description="JSON Lines file; `{pipeline}` and `{run_id}` are filled in. Default: "
        "the workspace's dead_letter/{pipeline}/{run_id}.jsonl.",
    )
    max_rejected: int | str | None = Field(
        None,
        description="Most records a run may reject (dead-lettered or skipped, at any stage) "
        'and still succeed: a count, or a share of the records read such as `"5%"`. '
        "Past it the run fails and publishes nothing. Default: a run fails when it rejects "
        "every record it read.",
        examples=[0, 100, "5%", "0.5%"],
    )

    @field_validator("max_rejected", mode="before")
    @classmethod
    def _count_or_share(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError('give a count such as 10 or a share such as "5%"')
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a count of records cannot be negative")
            return value
        if isinstance(value, str):
            share = value.strip().removesuffix("%")
            try:
                number = float(share)
            except ValueError:
                number = -1.0
            if not value.strip().endswith("%") or not 0 <= number <= 100:
                raise ValueError(f'{value!r}: give a count such as 10 or a share such as "5%"')
        return value

    def rejected_limit(self, read: int) -> float | None:
        """The most rejections allowed when ``read`` records were read (None: no limit)."""
        value = self.max_rejected
        if value is None:
            return max(read - 1, 0) if read else None
        if isinstance(value, int):
            return value
        return read * float(value.strip().removesuffix("%")) / 100


class TestInput(BaseModel):
    """Records fed in place of one source: inline, or read from a sample file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    records: list[dict[str, Any]] | None = Field(None, description="Records, inline.")
    file: str | None = Field(None, description="A sample file, decoded by its extension.")

    @model_validator(mode="after")
    def _one_of(self) -> TestInput:
        if (self.records is None) == (self.file is None):
            raise ValueError("give exactly one of `records` or `file`")
        return self


class TestExpectation(BaseModel):
    """What one component must output (a sink: what it would write)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    records: list[dict[str, Any]] | None = Field(None, description="Exactly these, in order.")
    count: int | None = Field(None, ge=0, description="This many records.")
    contains: list[dict[str, Any]] = Field(
        default_factory=list, description="Each of these appears among the records."
    )
    conditions: list[str] = Field(
        default_factory=list, description="JMESPath conditions every record must satisfy."
    )
    rejected: int | None = Field(None, ge=0, description="This many records rejected here.")


class TestCase(BaseModel):
    """One `engine test` case: inputs in place of sources, expectations on any component."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="What the case checks.")
    inputs: dict[str, TestInput] = Field(description="Source id -> records fed in its place.")
    expect: dict[str, TestExpectation] = Field(description="Component id -> expectation.")


TOP_LEVEL_KEYS = (
    "pipeline",
    "audit",
    "dead_letter",
    "state",
    "schedule",
    "sources",
    "transforms",
    "sinks",
    "tests",
)


def _union(models: Sequence[type[BaseModel]]) -> Any:
    if not models:
        return dict[str, Any]
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="type")]  # noqa: UP007


def pipeline_model(registry: Registry) -> type[BaseModel]:
    """A model of the whole file, with every registered kind, for the JSON Schema."""
    tables: dict[str, Any] = {}
    for role in Role:
        configs = [s.config for s in registry if s.role is role]
        tables[role.table] = (
            dict[str, _union(configs)],  # type: ignore[misc]
            Field(default_factory=dict, description=f"The pipeline's {role.table}, keyed by id."),
        )
    model: type[BaseModel] = create_model(
        "PipelineFile",
        __config__=ConfigDict(extra="forbid", title="Pipeline file"),
        pipeline=(PipelineMeta, ...),
        audit=(AuditSettings, Field(default_factory=AuditSettings)),
        dead_letter=(DeadLetterSettings, Field(default_factory=DeadLetterSettings)),
        state=(StateSettings, Field(default_factory=StateSettings)),
        schedule=(
            ScheduleSettings | None,
            Field(None, description="When `engine serve` runs the pipeline on its own."),
        ),
        tests=(list[TestCase], Field(default_factory=list, description="`engine test` cases.")),
        **tables,
    )
    return model
