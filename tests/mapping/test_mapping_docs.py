"""Every example in docs/functions.md runs and gives the documented output or error."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from engine.mapping import compile_expression
from tests.support.mapping import REPO_ROOT, matches_error

DOC = REPO_ROOT / "docs" / "functions.md"
_BLOCK = re.compile(r"^```example\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _examples() -> list[Any]:
    examples = []
    for block in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        fields = dict(line.split(":", 1) for line in block.strip().splitlines())
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        examples.append(pytest.param(fields, id=fields["expression"]))
    return examples


EXAMPLES = _examples()


def test_doc_has_examples_for_every_custom_function() -> None:
    from engine.mapping.library import CUSTOM_FUNCTIONS

    text = " ".join(example.values[0]["expression"] for example in EXAMPLES)
    missing = [name for name in CUSTOM_FUNCTIONS if f"{name}(" not in text]
    assert not missing


@pytest.mark.parametrize("example", EXAMPLES)
def test_doc_example(example: dict[str, str]) -> None:
    expression = compile_expression(example["expression"])
    given = json.loads(example["input"])
    if "error" in example:
        with pytest.raises(Exception) as caught:
            expression.search(given)
        assert matches_error(caught.value, example["error"]), caught.value
    else:
        result = expression.search(given)
        expected = json.loads(example["output"])
        assert result == expected
        assert type(result) is type(expected)
