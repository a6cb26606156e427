"""Input validation against botocore's service models: the shapes AWS itself publishes.

botocore checks only required members and types on the client; AWS also enforces enums, lengths, ranges
and patterns. This walker checks all of them and reports in AWS's own words, e.g.
`1 validation error detected: Value 'x y' at 'trainingJobName' failed to satisfy constraint: ...`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore.model import Shape

from sagelab.errors import ValidationError


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: skip the pattern rather than refuse valid input
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def validate(params: Any, shape: Shape | None) -> None:
    if shape is None:
        return
    problems: list[str] = []
    _walk(params, shape, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ValidationError(f"{count} validation {noun} detected: " + "; ".join(problems[:10]))


def _walk(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    where = path or "input"
    meta = shape.metadata

    def fail(constraint: str) -> None:
        problems.append(f"Value {_fmt(value)} at '{where}' failed to satisfy constraint: {constraint}")

    if kind == "structure":
        if not isinstance(value, dict):
            fail("Member must be a structure")
            return
        for required in shape.required_members:
            if value.get(required) is None:
                sub = f"{path}.{_camel(required)}" if path else _camel(required)
                problems.append(f"Value null at '{sub}' failed to satisfy constraint: Member must not be null")
        members = shape.members
        for name, item in value.items():
            if name in members and item is not None:
                _walk(item, members[name], f"{path}.{_camel(name)}" if path else _camel(name), problems)
        return
    if kind == "list":
        if not isinstance(value, list):
            fail("Member must be a list")
            return
        _length(value, meta, fail)
        for i, item in enumerate(value):
            _walk(item, shape.member, f"{where}.{i + 1}.member", problems)
        return
    if kind == "map":
        if not isinstance(value, dict):
            fail("Member must be a map")
            return
        _length(value, meta, fail)
        for key, item in value.items():
            _walk(key, shape.key, f"{where}.key", problems)
            _walk(item, shape.value, f"{where}.{key}", problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            fail("Member must be a string")
            return
        if shape.enum and value not in shape.enum:
            fail(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            return
        _length(value, meta, fail)
        pattern = meta.get("pattern")
        if pattern:
            compiled = _compiled(pattern)
            if compiled is not None and not compiled.fullmatch(value):
                fail(f"Member must satisfy regular expression pattern: {pattern}")
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("Member must be an integer")
            return
        _range(value, meta, fail)
        return
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("Member must be a number")
            return
        _range(value, meta, fail)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            fail("Member must be a boolean")
        return
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            fail("Member must be a timestamp")
        return
    if kind == "blob" and not isinstance(value, (str, bytes)):
        fail("Member must be a blob")


def _length(value: Any, meta: dict[str, Any], fail) -> None:
    if "min" in meta and len(value) < meta["min"]:
        fail(f"Member must have length greater than or equal to {meta['min']}")
    elif "max" in meta and len(value) > meta["max"]:
        fail(f"Member must have length less than or equal to {meta['max']}")


def _range(value: float, meta: dict[str, Any], fail) -> None:
    if "min" in meta and value < meta["min"]:
        fail(f"Member must have value greater than or equal to {meta['min']}")
    elif "max" in meta and value > meta["max"]:
        fail(f"Member must have value less than or equal to {meta['max']}")
