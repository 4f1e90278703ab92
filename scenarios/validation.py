"""Checks shared by the scenario readers; each failure names file, field, reason."""

from __future__ import annotations

import math
from typing import Any


class ScenarioError(ValueError):
    """A scenario that cannot be used, with the file, field and reason."""

    def __init__(self, source: str, field: str, reason: str):
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(f"{source}: {field}: {reason}")


class Validator:
    """Small checks that raise `ScenarioError` with this file's name."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, field: str, reason: str):
        raise ScenarioError(self.source, field or "scenario", reason)

    def check(self, ok: bool, field: str, reason: str) -> None:
        if not ok:
            self.fail(field, reason)

    def required(self, entry: dict, key: str, path: str) -> Any:
        if key not in entry or entry[key] is None:
            self.fail(f"{path}.{key}" if path else key, "required field is missing")
        return entry[key]

    def no_unknown(self, entry: dict, allowed: set, path: str) -> None:
        unknown = sorted(str(k) for k in entry if k not in allowed)
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            self.fail(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def mapping(self, value: Any, field: str, nonempty: bool = False) -> dict:
        if not isinstance(value, dict):
            self.fail(field, f"must be a mapping, got {_kind(value)}")
        if nonempty and not value:
            self.fail(field, "must not be empty")
        return value

    def sequence(self, value: Any, field: str) -> list:
        if not isinstance(value, list):
            self.fail(field, f"must be a list, got {_kind(value)}")
        return value

    def text(self, value: Any, field: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(field, f"must be text, got {_kind(value)}")
        text = str(value)
        if not text.strip():
            self.fail(field, "must not be empty")
        return text

    def number(
        self,
        value: Any,
        field: str,
        *,
        minimum: float | None = None,
        positive: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"must be a number, got {_kind(value)} {value!r}")
        number = float(value)
        if not math.isfinite(number):
            self.fail(field, f"must be finite, got {value!r}")
        if positive and number <= 0:
            self.fail(field, f"must be > 0, got {value!r}")
        if minimum is not None and number < minimum:
            self.fail(field, f"must be >= {minimum:g}, got {value!r}")
        return number

    def optional_number(self, value: Any, field: str) -> float | None:
        return None if value is None else self.number(value, field, minimum=0.0)

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(field, f"must be a whole number >= 1, got {value!r}")
        return value

    def choice(self, value: Any, field: str, options: tuple[str, ...]) -> str:
        if value not in options:
            self.fail(field, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def reference(self, value: Any, field: str, known: dict) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(field, f"must be an id (text), got {_kind(value)} {value!r}")
        key = str(value)
        if key not in known:
            names = ", ".join(map(str, known))
            self.fail(field, f"unknown id {value!r} (known: {names})")
        return key


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)
