"""JSON log lines read strictly: a line that is not one JSON object fails the test."""

from __future__ import annotations

import json
from typing import Any


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object, with the fields every record has."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        record = json.loads(line)  # raises on a line that is not JSON
        assert isinstance(record, dict), f"line {number} is not an object: {line}"
        missing = {"ts", "level", "logger", "msg"} - record.keys()
        assert not missing, f"line {number} lacks {missing}: {line}"
        records.append(record)
    return records
