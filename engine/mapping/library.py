"""The engine's custom JMESPath functions: arithmetic, strings, dates, hashing, masking.

Each function is a plain Python callable plus a signature in jmespath.py's own format, so the
interpreter (through :class:`EngineFunctions`) and the compiler share one implementation and one
set of type rules. Types are checked like jmespath.py checks them: by exact type name, so a boolean
is not a number.

A :class:`~decimal.Decimal` (a CSV column typed ``decimal``, a SQL NUMERIC) is a number, and
keeps its exact value: arithmetic with a float turns the float into the decimal it prints as.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from jmespath import exceptions
from jmespath.functions import TYPES_MAP, Functions, signature

from engine.errors import PermanentError

__all__ = [
    "ALL_FUNCTIONS",
    "CUSTOM_FUNCTIONS",
    "EngineFunctions",
    "FunctionSpec",
    "InvalidValueError",
    "jmespath_type",
]

_NUMBER = ("number",)
_STRING = ("string",)


class InvalidValueError(exceptions.JMESPathError, PermanentError):  # type: ignore[misc]
    """A function got an argument of the right type but an unusable value (e.g. division by 0)."""

    def __init__(self, function_name: str, message: str) -> None:
        self.function_name = function_name
        super().__init__(f"In function {function_name}(), {message}")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function: implementation, parameter types (jmespath names) and arity rules."""

    name: str
    impl: Callable[..., Any]
    params: tuple[tuple[str, ...], ...]
    optional: int = 0  # how many trailing params may be omitted
    variadic: bool = False  # the last param repeats; every repetition is type-checked

    @property
    def min_args(self) -> int:
        return len(self.params) - self.optional

    @property
    def max_args(self) -> int | None:
        return None if self.variadic else len(self.params)

    def check_arity(self, count: int) -> None:
        """Raise jmespath.py's arity error when ``count`` arguments cannot be accepted."""
        if self.variadic:
            if count < len(self.params):
                raise exceptions.VariadictArityError(len(self.params), count, self.name)
        elif count > len(self.params):
            raise exceptions.ArityError(len(self.params), count, self.name)
        elif count < self.min_args:
            raise exceptions.ArityError(self.min_args, count, self.name)

    def check_types(self, args: tuple[Any, ...]) -> None:
        """Raise JMESPathTypeError for the first argument whose type is not allowed."""
        for index, value in enumerate(args):
            allowed = self.params[min(index, len(self.params) - 1)]
            if allowed and jmespath_type(value) not in allowed:
                raise exceptions.JMESPathTypeError(
                    self.name, value, jmespath_type(value), list(allowed)
                )


def jmespath_type(value: Any) -> str:
    """The JMESPath type name of ``value``, decided as jmespath.py decides it (by class name)."""
    if value.__class__ is Decimal:
        return "number"
    name: str = TYPES_MAP.get(type(value).__name__, "unknown")
    return name


Number = int | float | Decimal


def _int_arg(function_name: str, value: Number, what: str) -> int:
    if value.__class__ is not int:
        if not float(value).is_integer():
            raise InvalidValueError(function_name, f"{what} must be a whole number, got {value}")
        return int(value)
    return int(value)


def exact(a: Number, b: Number) -> tuple[Number, Number]:
    """Operands Python can combine: beside a decimal, a float becomes the decimal it prints as."""
    if a.__class__ is Decimal and b.__class__ is float:
        return a, Decimal(repr(b))
    if b.__class__ is Decimal and a.__class__ is float:
        return Decimal(repr(a)), b
    return a, b


def fn_add(a: Number, b: Number) -> Number:
    a, b = exact(a, b)
    return a + b  # type: ignore[operator]


def fn_subtract(a: Number, b: Number) -> Number:
    a, b = exact(a, b)
    return a - b  # type: ignore[operator]


def fn_multiply(a: Number, b: Number) -> Number:
    a, b = exact(a, b)
    return a * b  # type: ignore[operator]


def fn_divide(a: Number, b: Number) -> Number:
    if b == 0:
        raise InvalidValueError("divide", "division by zero")
    a, b = exact(a, b)
    return a / b  # type: ignore[operator]


def fn_round(x: Number, ndigits: Number) -> Number:
    digits = _int_arg("round", ndigits, "ndigits")
    if isinstance(x, Decimal):
        return round(x, digits)
    return round(x, digits)


def fn_upper(s: str) -> str:
    return s.upper()


def fn_lower(s: str) -> str:
    return s.lower()


def fn_trim(s: str) -> str:
    return s.strip()


def fn_replace(s: str, old: str, new: str) -> str:
    if not old:
        raise InvalidValueError("replace", "the text to replace must not be empty")
    return s.replace(old, new)


def fn_split(s: str, sep: str) -> list[str]:
    if not sep:
        return list(s)
    return s.split(sep)


def fn_pad_left(s: str, width: Number, fill: str) -> str:
    if len(fill) != 1:
        raise InvalidValueError("pad_left", f"fill must be one character, got {fill!r}")
    return s.rjust(_int_arg("pad_left", width, "width"), fill)


def fn_concat(*parts: str) -> str:
    return "".join(parts)


def fn_coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _parse_iso(function_name: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InvalidValueError(function_name, f"not an ISO-8601 date or time: {text!r}") from None


def fn_parse_date(s: str, fmt: str | None = None) -> str:
    if fmt is None:
        return _parse_iso("parse_date", s).isoformat()
    try:
        return datetime.strptime(s, fmt).isoformat()
    except ValueError:
        raise InvalidValueError("parse_date", f"{s!r} does not match format {fmt!r}") from None


def fn_format_date(s: str, fmt: str) -> str:
    return _parse_iso("format_date", s).strftime(fmt)


def fn_now() -> str:
    return datetime.now(UTC).isoformat()


def fn_sha256(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def fn_mask(s: str, keep: Number) -> str:
    count = _int_arg("mask", keep, "keep")
    if count < 0:
        raise InvalidValueError("mask", f"keep must not be negative, got {count}")
    hidden = max(len(s) - count, 0)
    return "*" * hidden + s[hidden:]


CUSTOM_FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        FunctionSpec("add", fn_add, (_NUMBER, _NUMBER)),
        FunctionSpec("subtract", fn_subtract, (_NUMBER, _NUMBER)),
        FunctionSpec("multiply", fn_multiply, (_NUMBER, _NUMBER)),
        FunctionSpec("divide", fn_divide, (_NUMBER, _NUMBER)),
        FunctionSpec("round", fn_round, (_NUMBER, _NUMBER)),
        FunctionSpec("upper", fn_upper, (_STRING,)),
        FunctionSpec("lower", fn_lower, (_STRING,)),
        FunctionSpec("trim", fn_trim, (_STRING,)),
        FunctionSpec("replace", fn_replace, (_STRING, _STRING, _STRING)),
        FunctionSpec("split", fn_split, (_STRING, _STRING)),
        FunctionSpec("pad_left", fn_pad_left, (_STRING, _NUMBER, _STRING)),
        FunctionSpec("concat", fn_concat, (_STRING,), variadic=True),
        FunctionSpec("coalesce", fn_coalesce, ((),), variadic=True),
        FunctionSpec("parse_date", fn_parse_date, (_STRING, _STRING), optional=1),
        FunctionSpec("format_date", fn_format_date, (_STRING, _STRING)),
        FunctionSpec("now", fn_now, ()),
        FunctionSpec("sha256", fn_sha256, (_STRING,)),
        FunctionSpec("mask", fn_mask, (_STRING, _NUMBER)),
    )
}


def _builtin_spec(name: str, entry: dict[str, Any]) -> FunctionSpec:
    signature = entry["signature"]
    params = tuple(tuple(arg["types"]) for arg in signature)
    variadic = bool(signature and signature[-1].get("variadic"))
    return FunctionSpec(name, entry["function"], params, variadic=variadic)


#: Arity rules of every function an expression may call (built-ins and the custom library).
ALL_FUNCTIONS: dict[str, FunctionSpec] = {
    **{name: _builtin_spec(name, entry) for name, entry in Functions.FUNCTION_TABLE.items()},
    **CUSTOM_FUNCTIONS,
}


F = TypeVar("F", bound=Callable[..., Any])


def _signature(*params: dict[str, Any]) -> Callable[[F], F]:
    """jmespath.py's ``@signature``, typed."""
    return cast("Callable[[F], F]", signature(*params))


class EngineFunctions(Functions):  # type: ignore[misc]
    """jmespath.py's built-in functions plus the engine's library, for the interpreter path.

    The built-ins also take decimals where they take numbers, and keep them exact.
    """

    def _get_allowed_pytypes(self, types: list[str]) -> tuple[list[str], list[list[str]]]:
        allowed, subtypes = super()._get_allowed_pytypes(types)
        if "float" in allowed:
            allowed = [*allowed, "Decimal"]
        return allowed, [[*sub, "Decimal"] if "float" in sub else sub for sub in subtypes]

    @_signature({"types": []})
    def _func_to_number(self, arg: Any) -> Any:
        if arg.__class__ is Decimal:
            return arg
        return super()._func_to_number(arg)

    @_signature({"types": []})
    def _func_to_string(self, arg: Any) -> Any:
        if arg.__class__ is Decimal:
            return str(arg)
        return super()._func_to_string(arg)

    @_signature({"types": []})
    def _func_type(self, arg: Any) -> Any:
        return jmespath_type(arg) if arg.__class__ is Decimal else super()._func_type(arg)

    @_signature({"types": ["array-number"]})
    def _func_sum(self, arg: list[Any]) -> Any:
        total: Number = 0
        for item in arg:
            total = fn_add(total, item)
        return total

    @_signature({"types": ["array-number"]})
    def _func_avg(self, arg: list[Any]) -> Any:
        return fn_divide(self._func_sum(arg), len(arg)) if arg else None

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        spec = CUSTOM_FUNCTIONS.get(function_name)
        if spec is None:
            return super().call_function(function_name, resolved_args)
        spec.check_arity(len(resolved_args))
        args = tuple(resolved_args)
        spec.check_types(args)
        return spec.impl(*args)
