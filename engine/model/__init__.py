"""The pipeline document's own models: its tables, test cases and the whole-file model.

Below the runtime and above the components: it knows the component kinds (through the
registry) and nothing that runs them.
"""

from engine.model.document import (
    TOP_LEVEL_KEYS,
    DeadLetterSettings,
    PipelineMeta,
    TestCase,
    TestExpectation,
    TestInput,
    pipeline_model,
)
from engine.model.schedule import Missed, ScheduleSettings, parse_interval

__all__ = [
    "TOP_LEVEL_KEYS",
    "DeadLetterSettings",
    "Missed",
    "PipelineMeta",
    "ScheduleSettings",
    "TestCase",
    "TestExpectation",
    "TestInput",
    "parse_interval",
    "pipeline_model",
]
