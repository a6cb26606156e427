"""A recipe's typed specification, parsed and checked before any data is read.

A recipe is JSON: `{"target": "label", "steps": [{"step": "impute", ...}, ...]}`. Every problem is
reported as a `RecipeError` naming the step (its 1-based number and kind) and the field or column, e.g.
`step 3 (scale): column 'age' is text, expected a numeric column`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sagelab.errors import ValidationError

# Column kinds a recipe reasons about.
NUMERIC, STRING, DATETIME, BOOLEAN = "numeric", "text", "datetime", "boolean"


class RecipeError(ValidationError):
    """A recipe that cannot run: wrong field, unknown step, unknown column or a column of the wrong kind."""


def where(index: int, kind: str) -> str:
    return f"step {index + 1} ({kind})"


class Fields:
    """Reads one step's fields with type checks; complains about the fields nobody read."""

    def __init__(self, index: int, raw: Mapping[str, Any]):
        self.index = index
        self.kind = str(raw.get("step"))
        self.raw = dict(raw)
        self.seen = {"step"}

    @property
    def at(self) -> str:
        return where(self.index, self.kind)

    def error(self, message: str) -> RecipeError:
        return RecipeError(f"{self.at}: {message}")

    def get(self, name: str, types: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.raw or self.raw[name] is None:
            if required:
                raise self.error(f"field {name!r} is required.")
            return default
        value = self.raw[name]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self.error(f"field {name!r} must be {_type_names(types)}, got {value!r}.")
        if not isinstance(value, types):
            raise self.error(f"field {name!r} must be {_type_names(types)}, got {value!r}.")
        return value

    def number(self, name: str, default: float | None = None, *, low: float | None = None,
               high: float | None = None, required: bool = False) -> float | None:
        value = self.get(name, (int, float), default, required=required)
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f"at least {low}" if low is not None else f"at most {high}")
            raise self.error(f"field {name!r} must be {bounds}, got {value!r}.")
        return value

    def choice(self, name: str, options: Iterable[str], default: str | None = None) -> str:
        options = tuple(options)
        value = self.get(name, str, default, required=default is None)
        if value not in options:
            raise self.error(f"field {name!r} must be one of {', '.join(options)}; got {value!r}.")
        return value

    def column(self, name: str = "column") -> str:
        value = self.get(name, str, required=True)
        if not value:
            raise self.error(f"field {name!r} must name a column.")
        return value

    def columns(self, name: str = "columns", *, required: bool = False) -> list[str] | None:
        """A list of column names; None (omitted) means "every column of the kind the step takes"."""
        value = self.get(name, list, required=required)
        if value is None:
            return None
        if not value or not all(isinstance(c, str) and c for c in value):
            raise self.error(f"field {name!r} must be a non-empty list of column names, got {value!r}.")
        if len(set(value)) != len(value):
            raise self.error(f"field {name!r} names a column twice: {value!r}.")
        return list(value)

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.seen)
        if unknown:
            raise self.error(f"unknown field(s) {', '.join(map(repr, unknown))}.")


def _type_names(types: type | tuple[type, ...]) -> str:
    names = {int: "a number", float: "a number", str: "a string", bool: "true or false", list: "a list",
             dict: "an object"}
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


@dataclasses.dataclass
class Schema:
    """Column name -> kind, as the recipe runs. `open_prefixes` are columns a step makes from the data
    (one-hot categories, TF-IDF terms) whose names are only known once it has been fitted."""

    kinds: dict[str, str]
    open_prefixes: list[str] = dataclasses.field(default_factory=list)

    def copy(self) -> Schema:
        return Schema(dict(self.kinds), list(self.open_prefixes))

    def maybe(self, column: str) -> bool:
        return any(column.startswith(p) for p in self.open_prefixes)

    def require(self, at: str, columns: Iterable[str], kinds: Iterable[str] | None = None) -> None:
        kinds = tuple(kinds) if kinds else None
        for column in columns:
            kind = self.kinds.get(column)
            if kind is None:
                if self.maybe(column):
                    continue
                raise RecipeError(f"{at}: unknown column {column!r}; the columns at this step are "
                                  f"{', '.join(self.kinds) or 'none'}.")
            if kinds and kind not in kinds:
                raise RecipeError(f"{at}: column {column!r} is {kind}, expected a {' or '.join(kinds)} column.")

    def add(self, at: str, column: str, kind: str) -> None:
        if column in self.kinds:
            raise RecipeError(f"{at}: the new column {column!r} would replace an existing column of that name.")
        self.kinds[column] = kind
