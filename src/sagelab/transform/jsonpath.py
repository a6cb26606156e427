"""The JSONPath subset SageMaker batch transform accepts in `DataProcessing` filters.

Supported, as documented for InputFilter/OutputFilter:

    $                      the whole record
    $.name  $['name']      a member of an object
    $[2]  $[-1]            an element of an array (negative indexes count from the end)
    $[0,2]  $[1:]  $[0,5:] a union of indexes and slices (slices as in Python, bounds optional)
    $['a','b']             a union of members: an object with just those members
    $.a.*  $[*]            every member or element

A step that selects several things (a union, a slice or `*`) must be the last one. Anything else (`..`,
filters `?()`, scripts, steps after a union) is refused when the job is created. A CSV record is seen as
the array of its fields, as SageMaker sees it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sagelab.errors import ValidationError


@dataclasses.dataclass(frozen=True)
class Member:
    name: str


@dataclasses.dataclass(frozen=True)
class Index:
    position: int


@dataclasses.dataclass(frozen=True)
class Slice:
    start: int | None
    stop: int | None


@dataclasses.dataclass(frozen=True)
class Wildcard:
    pass


Selector = Member | Index | Slice | Wildcard


@dataclasses.dataclass(frozen=True)
class Step:
    selectors: tuple[Selector, ...]

    @property
    def selects_one(self) -> bool:
        return len(self.selectors) == 1 and isinstance(self.selectors[0], Member | Index)


class JsonPathError(Exception):
    """A record does not have what the expression selects (a missing member, an index out of range)."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"-?\d+")
_SLICE = re.compile(r"(-?\d+)?\s*:\s*(-?\d+)?")
_QUOTED = re.compile(r"""'([^']*)'|"([^"]*)\"""")


@dataclasses.dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @property
    def is_identity(self) -> bool:
        return not self.steps

    def select(self, value: Any) -> Any:
        for step in self.steps:
            value = _apply(step, value)
        return value

    def __str__(self) -> str:
        return self.text


def parse_jsonpath(text: str, *, field: str) -> JsonPath:
    """Parse `text`, or raise ValidationError naming `field` and what is not supported."""
    expression = text.strip()
    if expression == "":
        expression = "$"

    def refuse(why: str) -> ValidationError:
        return ValidationError(f"{field} {text!r} is not a supported JSONPath expression: {why}. Supported: $, "
                               "$.name, $['name','other'], $[index], $[i,j], $[start:end] (negative indexes "
                               "allowed), * ; a union or slice must be the last step.")

    if not expression.startswith("$"):
        raise refuse("it must start with '$'")
    steps: list[Step] = []
    position = 1
    while position < len(expression):
        if steps and not steps[-1].selects_one:
            raise refuse("nothing may follow a step that selects several items")
        rest = expression[position:]
        if rest.startswith(".."):
            raise refuse("recursive descent '..' is not supported")
        if rest.startswith(".["):  # $.field.['a','b'] is accepted by SageMaker as $.field['a','b']
            position += 1
            continue
        if rest.startswith(".*"):
            steps.append(Step((Wildcard(),)))
            position += 2
            continue
        if rest.startswith("."):
            match = _NAME.match(rest, 1)
            if not match:
                raise refuse(f"expected a member name after '.' at position {position + 1}")
            steps.append(Step((Member(match.group()),)))
            position += match.end()
            continue
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                raise refuse("a '[' is never closed")
            steps.append(Step(_parse_union(rest[1:end], refuse)))
            position += end + 1
            continue
        raise refuse(f"unexpected {rest[0]!r} at position {position + 1}")
    return JsonPath(text, tuple(steps))


def _parse_union(inside: str, refuse) -> tuple[Selector, ...]:
    parts = [p.strip() for p in _split_union(inside)]
    if not parts or any(not p for p in parts):
        raise refuse(f"empty selector in [{inside}]")
    selectors: list[Selector] = []
    for part in parts:
        if part == "*":
            selectors.append(Wildcard())
        elif _INDEX.fullmatch(part):
            selectors.append(Index(int(part)))
        elif (sliced := _SLICE.fullmatch(part)) is not None:
            start, stop = sliced.groups()
            selectors.append(Slice(None if start is None else int(start), None if stop is None else int(stop)))
        elif (quoted := _QUOTED.fullmatch(part)) is not None:
            selectors.append(Member(quoted.group(1) if quoted.group(1) is not None else quoted.group(2)))
        elif part.startswith("?") or part.startswith("("):
            raise refuse("filter and script expressions are not supported")
        else:
            raise refuse(f"{part!r} is neither an index, a slice nor a quoted member name")
    kinds = {type(s) for s in selectors}
    if Member in kinds and kinds & {Index, Slice}:
        raise refuse("a union may not mix member names with indexes or slices")
    if Wildcard in kinds and len(selectors) > 1:
        raise refuse("'*' cannot be part of a union")
    return tuple(selectors)


def _split_union(inside: str) -> list[str]:
    """Split on commas that are not inside quotes."""
    parts, current, quote = [], [], ""
    for char in inside:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _apply(step: Step, value: Any) -> Any:
    if step.selects_one:
        return _one(step.selectors[0], value)
    first = step.selectors[0]
    if isinstance(first, Member):
        if not isinstance(value, dict):
            raise JsonPathError(f"members {[s.name for s in step.selectors]} were asked of a "
                                f"{_kind(value)}, not an object")
        return {s.name: _one(s, value) for s in step.selectors}
    if isinstance(first, Wildcard):
        if isinstance(value, dict):
            return list(value.values())
        if isinstance(value, list):
            return list(value)
        raise JsonPathError(f"'*' was applied to a {_kind(value)}")
    if not isinstance(value, list):
        raise JsonPathError(f"indexes were asked of a {_kind(value)}, not an array")
    selected: list[Any] = []
    for selector in step.selectors:
        if isinstance(selector, Slice):
            selected.extend(value[selector.start:selector.stop])
        else:
            selected.append(_one(selector, value))
    return selected


def _one(selector: Selector, value: Any) -> Any:
    if isinstance(selector, Member):
        if not isinstance(value, dict):
            raise JsonPathError(f"member {selector.name!r} was asked of a {_kind(value)}, not an object")
        if selector.name not in value:
            raise JsonPathError(f"the record has no member {selector.name!r}")
        return value[selector.name]
    assert isinstance(selector, Index)
    if not isinstance(value, list):
        raise JsonPathError(f"index {selector.position} was asked of a {_kind(value)}, not an array")
    if not -len(value) <= selector.position < len(value):
        raise JsonPathError(f"index {selector.position} is out of range: the record has {len(value)} "
                            f"element(s)")
    return value[selector.position]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__
