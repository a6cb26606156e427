"""Declared hyperparameter schemas, validated once when a job is created.

SageMaker passes every hyperparameter as a string. A schema turns the strings into typed values, fills
defaults, and refuses bad input with a message that names the hyperparameter, what is allowed and what
came. Keys starting with `_` (e.g. `_tuning_objective_metric`, injected by tuning jobs) are passed through.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sagelab.errors import ValidationError

REQUIRED = object()
AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    name: str
    kind: str  # "int", "float", "bool", "str", "json", "int_list"
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    #: The string "auto" is accepted (and kept as "auto") besides the typed values.
    allow_auto: bool = False
    help: str = ""
    #: A valid value, for free-form required hyperparameters (DeepAR's time_freq "H"); the conformance kit
    #: builds its minimal valid hyperparameters from it.
    example: Any = None

    def expected(self) -> str:
        parts: list[str] = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        else:
            noun = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                    "json": "a JSON value", "int_list": "a comma-separated list of integers"}[self.kind]
            bounds = []
            if self.min is not None:
                bounds.append(f"{'>=' if self.min_inclusive else '>'} {self.min:g}")
            if self.max is not None:
                bounds.append(f"{'<=' if self.max_inclusive else '<'} {self.max:g}")
            parts.append(noun + (" " + " and ".join(bounds) if bounds else ""))
        if self.allow_auto:
            parts.append("'auto'")
        return " or ".join(parts)

    def parse(self, raw: Any) -> Any:
        def fail() -> ValidationError:
            return ValidationError(
                f"Hyperparameter {self.name!r}: expected {self.expected()}, got {raw!r}.")

        text = raw if isinstance(raw, str) else json.dumps(raw) if not isinstance(raw, str) else raw
        text = str(text).strip()
        if self.allow_auto and text.lower() == AUTO:
            return AUTO
        value: Any
        try:
            if self.kind == "int":
                as_float = float(text)
                if not as_float.is_integer():
                    raise fail()
                value = int(as_float)
            elif self.kind == "float":
                value = float(text)
                if math.isnan(value):
                    raise fail()
            elif self.kind == "bool":
                lowered = text.lower()
                if lowered in ("true", "1"):
                    value = True
                elif lowered in ("false", "0"):
                    value = False
                else:
                    raise fail()
            elif self.kind == "json":
                value = json.loads(text)
            elif self.kind == "int_list":
                value = [int(p) for p in text.strip("[]()").split(",") if p.strip()]
            else:
                value = text
        except (ValueError, OverflowError):
            raise fail() from None
        if self.choices is not None:
            normalised = value.lower() if isinstance(value, str) else value
            lookup = {c.lower() if isinstance(c, str) else c: c for c in self.choices}
            if normalised not in lookup:
                raise fail()
            value = lookup[normalised]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.min is not None and (value < self.min or (value == self.min and not self.min_inclusive)):
                raise fail()
            if self.max is not None and (value > self.max or (value == self.max and not self.max_inclusive)):
                raise fail()
        return value


@dataclasses.dataclass(frozen=True)
class HyperparameterSchema:
    params: Sequence[Hyperparameter]
    #: Cross-field rules, run after each value parsed (e.g. num_class only with multi objectives).
    checks: Sequence[Callable[[dict[str, Any]], None]] = ()

    def by_name(self) -> dict[str, Hyperparameter]:
        return {p.name: p for p in self.params}

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        known = self.by_name()
        values: dict[str, Any] = {}
        for key, text in raw.items():
            # Keys starting with "_" are not SageMaker's: those a schema declares (sagelab's own knobs, named
            # `_sagelab_*`) are parsed like any other; the rest (e.g. tuning's injected keys) pass through.
            if key.startswith("_") and key not in known:
                values[key] = text
                continue
            if key not in known:
                raise ValidationError(
                    f"Hyperparameter {key!r} is not supported by this algorithm. Supported: "
                    f"{', '.join(sorted(known))}.")
            values[key] = known[key].parse(text)
        for param in self.params:
            if param.name not in values:
                if param.required:
                    raise ValidationError(f"Hyperparameter {param.name!r} is required: expected "
                                          f"{param.expected()}.")
                values[param.name] = param.default
        for check in self.checks:
            check(values)
        return values
