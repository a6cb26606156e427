"""Evaluating a definition's expressions at run time: `Get`, `Std:Join`, `Std:JsonGet` and conditions.

Everything a step's arguments read is known by the time the step starts (its upstream steps have
succeeded), so a step's arguments are resolved once, into the plain request its job is created with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sagelab.errors import ValidationError
from sagelab.pipelines import properties
from sagelab.transform.jsonpath import JsonPathError, parse_jsonpath


class Scope:
    """What an execution's expressions can read."""

    def __init__(self, *, parameters: dict[str, Any], variables: dict[str, Any],
                 step_properties: Callable[[str], dict[str, Any]],
                 property_file: Callable[[str, str], Any], read_json: Callable[[str], Any]):
        self.parameters = parameters
        self.variables = variables
        #: A finished step's properties (its Describe answer).
        self.step_properties = step_properties
        #: (step, property file name) -> the file's parsed JSON.
        self.property_file = property_file
        #: An S3 URI -> its parsed JSON.
        self.read_json = read_json

    def with_variables(self, **variables: Any) -> Scope:
        """The same scope with more execution variables (a step's own job name)."""
        return Scope(parameters=self.parameters, variables={**self.variables, **variables},
                     step_properties=self.step_properties, property_file=self.property_file,
                     read_json=self.read_json)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                (key, inner), = value.items()
                if key == "Get" and isinstance(inner, str):
                    return self.get(inner)
                if key == "Std:Join":
                    return self._join(inner)
                if key == "Std:JsonGet":
                    return self._json_get(inner)
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def get(self, expression: str) -> Any:
        root, _, rest = expression.partition(".")
        if root == "Parameters":
            return self.parameters[rest]
        if root == "Execution":
            if rest == "CurrentDateTime" and rest not in self.variables:
                return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if rest not in self.variables:
                raise ValidationError(f"{expression!r} has no value in this step: TrainingJobName and "
                                      "ProcessingJobName are known only in Training and Processing steps.")
            return self.variables[rest]
        step, _, path = rest.partition(".")
        if path.startswith("PropertyFiles."):
            return {"_PropertyFile": (step, path.split(".", 1)[1])}
        segments = properties.parse_path(path, where=expression)
        return properties.select(self.step_properties(step), segments, where=f"{expression!r}")

    def _join(self, spec: dict[str, Any]) -> str:
        return str(spec.get("On", "")).join(text(self.resolve(v)) for v in spec.get("Values") or [])

    def _json_get(self, spec: dict[str, Any]) -> Any:
        path_text = spec.get("Path") or "$"
        if "PropertyFile" in spec:
            reference = self.resolve(spec["PropertyFile"])
            if not (isinstance(reference, dict) and "_PropertyFile" in reference):
                raise ValidationError(f"Std:JsonGet: PropertyFile must be a step's property file; got {reference!r}.")
            step, name = reference["_PropertyFile"]
            document = self.property_file(step, name)
            where = f"Std:JsonGet of property file {name!r} of step {step!r}"
        else:
            uri = self.resolve(spec.get("S3Uri"))
            document = self.read_json(uri)
            where = f"Std:JsonGet of {uri}"
        path = parse_jsonpath(path_text if path_text.startswith("$") else f"$.{path_text}", field=f"{where}: Path")
        try:
            return path.select(document)
        except JsonPathError as exc:
            raise ValidationError(f"{where}: the JSON has no {path_text!r} ({exc}).") from None

    # --- conditions -------------------------------------------------------------------------------
    def holds(self, condition: dict[str, Any]) -> bool:
        kind = condition.get("Type")
        if kind == "Not":
            return not self.holds(condition["Condition"])
        if kind == "Or":
            return any(self.holds(c) for c in condition.get("Conditions") or [])
        if kind == "In":
            query = self.resolve(condition.get("QueryValue"))
            return any(_equal(query, self.resolve(v)) for v in condition.get("Values") or [])
        left, right = self.resolve(condition.get("LeftValue")), self.resolve(condition.get("RightValue"))
        if kind == "Equals":
            return _equal(left, right)
        compare = _COMPARISONS.get(kind or "")
        if compare is None:
            raise ValidationError(f"Unknown condition type {kind!r}.")
        a, b = _number(left, kind), _number(right, kind)
        return compare(a, b)


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThan": lambda a, b: a > b, "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b}


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _number(value: Any, kind: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"Condition {kind}: {value!r} is not a number.") from None


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool | str):
        return float(a) == float(b)
    if isinstance(a, str) != isinstance(b, str):
        return text(a) == text(b)
    return a == b
