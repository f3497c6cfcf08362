"""Shared helpers of the mapping tests: the compliance error names and their classes."""

from __future__ import annotations

from pathlib import Path

from jmespath import exceptions

from engine.mapping import InvalidValueError

#: Error names used by the JMESPath compliance suite and docs/functions.md.
ERROR_CLASSES: dict[str, tuple[type[Exception], ...]] = {
    "syntax": (exceptions.ParseError,),
    "invalid-type": (exceptions.JMESPathTypeError,),
    # jmespath.py raises Python's ValueError for a zero slice step.
    "invalid-value": (InvalidValueError, ValueError),
    "invalid-arity": (exceptions.ArityError,),
    "unknown-function": (exceptions.UnknownFunctionError,),
}

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPLIANCE_DIR = REPO_ROOT.parent / "shared" / "testdata" / "jmespath-compliance"


def matches_error(error: BaseException, name: str) -> bool:
    """Whether ``error`` is what the suite calls ``name`` (a syntax error is not an arity one)."""
    if name == "syntax" and isinstance(error, exceptions.ArityError):
        return False
    return isinstance(error, ERROR_CLASSES[name])
