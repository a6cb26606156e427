"""A pipeline definition (the JSON `Pipeline.definition()` writes), validated once into typed values.

What is checked when a pipeline is created or updated, each failure naming what is wrong: the JSON
itself; each parameter's type and default; that step names are unique; that every `Get` names a declared
parameter, a known execution variable, or a step of the pipeline and one of that step's properties; that
`DependsOn` names steps; and that the steps form no cycle. A step's dependencies are its `DependsOn`, the
steps its arguments read, and, for a step in a condition's branch, the condition.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from sagelab.errors import ValidationError
from sagelab.pipelines import properties
from sagelab.pipelines.caching import parse_duration
from sagelab.pipelines.retries import RetryPolicy, parse_policies

PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
EXECUTION_VARIABLES = ("PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "PipelineArn",
                       "StartDateTime", "CurrentDateTime", "TrainingJobName", "ProcessingJobName")
#: Step types sagelab runs; any other type fails with a clear reason when the execution reaches it.
RUNNABLE_TYPES = ("Processing", "Training", "Tuning", "Model", "CreateModel", "RegisterModel", "Transform",
                  "Condition", "Fail")


@dataclasses.dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any  # None: the execution must give a value
    enum_values: tuple[str, ...] = ()

    def convert(self, raw: str) -> Any:
        """A StartPipelineExecution override (always a string on the wire) as this parameter's type."""
        where = f"PipelineParameters: parameter {self.name!r} is {self.type}"
        if self.type == "Integer":
            try:
                return int(raw)
            except ValueError:
                raise ValidationError(f"{where}; {raw!r} is not an integer.") from None
        if self.type == "Float":
            try:
                return float(raw)
            except ValueError:
                raise ValidationError(f"{where}; {raw!r} is not a number.") from None
        if self.type == "Boolean":
            if raw.lower() not in ("true", "false"):
                raise ValidationError(f"{where}; {raw!r} is not true or false.")
            return raw.lower() == "true"
        if self.enum_values and raw not in self.enum_values:
            raise ValidationError(f"{where} with values {', '.join(self.enum_values)}; got {raw!r}.")
        return raw


@dataclasses.dataclass(frozen=True)
class StepDefinition:
    name: str
    type: str
    arguments: Any
    depends_on: tuple[str, ...]
    #: Every step this one waits for: DependsOn, the steps its arguments read, its condition.
    upstream: frozenset[str]
    #: (condition step, branch outcome) for a step inside a condition's IfSteps or ElseSteps.
    gate: tuple[str, bool] | None
    property_files: tuple[dict[str, Any], ...]
    cache: dict[str, Any] | None
    retry_policies: tuple[RetryPolicy, ...]
    raw: dict[str, Any]

    @property
    def caches(self) -> bool:
        return bool(self.cache and self.cache.get("Enabled"))


@dataclasses.dataclass(frozen=True)
class PipelineDefinition:
    parameters: dict[str, Parameter]
    #: Every step, those inside condition branches too, in definition order.
    steps: dict[str, StepDefinition]
    text: str

    def parameter_values(self, overrides: list[dict[str, str]] | None) -> dict[str, Any]:
        values = {name: p.default for name, p in self.parameters.items()}
        for item in overrides or []:
            parameter = self.parameters.get(item["Name"])
            if parameter is None:
                known = ", ".join(self.parameters) or "none"
                raise ValidationError(f"PipelineParameters: the pipeline has no parameter {item['Name']!r} "
                                      f"(its parameters: {known}).")
            values[parameter.name] = parameter.convert(item["Value"])
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise ValidationError(f"PipelineParameters: parameter(s) {', '.join(missing)} have no default value "
                                  "and must be given.")
        return values


def references(value: Any) -> Iterator[str]:
    """Every `Get` expression inside a value."""
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and len(value) == 1:
            yield value["Get"]
            return
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def parse_definition(text: str) -> PipelineDefinition:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"PipelineDefinition is not valid JSON: {exc}.") from None
    if not isinstance(document, dict):
        raise ValidationError("PipelineDefinition must be a JSON object with Version, Parameters and Steps.")
    parameters = _parameters(document.get("Parameters") or [])
    raw_steps = document.get("Steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ValidationError("PipelineDefinition.Steps must be a non-empty list of steps.")
    flat: list[tuple[dict[str, Any], tuple[str, bool] | None]] = []
    _flatten(raw_steps, None, flat, "Steps")
    types: dict[str, str] = {}
    for raw, _ in flat:
        if raw["Name"] in types:
            raise ValidationError(f"PipelineDefinition: step name {raw['Name']!r} is used twice; step names "
                                  "must be unique, inside condition branches too.")
        types[raw["Name"]] = raw["Type"]
    files = {raw["Name"]: {f.get("PropertyFileName") for f in raw.get("PropertyFiles") or []} for raw, _ in flat}
    steps = {raw["Name"]: _step(raw, gate, parameters, types, files) for raw, gate in flat}
    _check_acyclic(steps)
    return PipelineDefinition(parameters=parameters, steps=steps, text=text)


def _parameters(raw: Any) -> dict[str, Parameter]:
    if not isinstance(raw, list):
        raise ValidationError("PipelineDefinition.Parameters must be a list.")
    out: dict[str, Parameter] = {}
    for index, item in enumerate(raw):
        where = f"PipelineDefinition.Parameters[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise ValidationError(f"{where} must be an object with a Name.")
        name, kind = item["Name"], item.get("Type", "String")
        where = f"Parameter {name!r}"
        if kind not in PARAMETER_TYPES:
            raise ValidationError(f"{where}: Type must be one of {', '.join(PARAMETER_TYPES)}; got {kind!r}.")
        if name in out:
            raise ValidationError(f"{where} is declared twice.")
        default = item.get("DefaultValue")
        if default is not None and not _has_type(default, kind):
            raise ValidationError(f"{where} is {kind}, but its DefaultValue is {default!r} "
                                  f"({type(default).__name__}).")
        enum = tuple(item.get("EnumValues") or ())
        if enum and default is not None and default not in enum:
            raise ValidationError(f"{where}: DefaultValue {default!r} is not one of its EnumValues.")
        out[name] = Parameter(name=name, type=kind, default=float(default) if kind == "Float" and default is not None
                              else default, enum_values=enum)
    return out


def _has_type(value: Any, kind: str) -> bool:
    if kind == "Boolean":
        return isinstance(value, bool)
    if kind == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _flatten(raw_steps: list[Any], gate: tuple[str, bool] | None,
             out: list[tuple[dict[str, Any], tuple[str, bool] | None]], where: str) -> None:
    for index, raw in enumerate(raw_steps):
        here = f"{where}[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("Name"), str) or not isinstance(raw.get("Type"), str):
            raise ValidationError(f"PipelineDefinition.{here} must be an object with a Name and a Type.")
        out.append((raw, gate))
        if raw["Type"] == "Condition":
            arguments = raw.get("Arguments") or {}
            _flatten(arguments.get("IfSteps") or [], (raw["Name"], True), out, f"{here}.Arguments.IfSteps")
            _flatten(arguments.get("ElseSteps") or [], (raw["Name"], False), out, f"{here}.Arguments.ElseSteps")


def _step(raw: dict[str, Any], gate: tuple[str, bool] | None, parameters: dict[str, Parameter],
          types: dict[str, str], files: dict[str, set[str]]) -> StepDefinition:
    name = raw["Name"]
    arguments = raw.get("Arguments") or {}
    if raw["Type"] == "Condition":
        # The branches are steps of their own; the condition's arguments are its conditions.
        arguments = {"Conditions": arguments.get("Conditions") or []}
        if not arguments["Conditions"]:
            raise ValidationError(f"Step {name!r}: a Condition step needs at least one condition.")
    upstream: set[str] = set()
    depends_on = tuple(raw.get("DependsOn") or ())
    for other in depends_on:
        if other not in types:
            raise ValidationError(f"Step {name!r}: DependsOn names {other!r}, which is not a step of this pipeline.")
        upstream.add(other)
    for expression in references(arguments):
        referenced = _check_reference(expression, f"Step {name!r}", parameters, types, files)
        if referenced is not None:
            upstream.add(referenced)
    if gate is not None:
        upstream.add(gate[0])
    if name in upstream:
        raise ValidationError(f"Step {name!r} depends on itself.")
    cache = raw.get("CacheConfig")
    if cache is not None and cache.get("ExpireAfter"):
        parse_duration(cache["ExpireAfter"], where=f"Step {name!r}: CacheConfig")
    return StepDefinition(name=name, type=raw["Type"], arguments=arguments, depends_on=depends_on,
                          upstream=frozenset(upstream), gate=gate, property_files=tuple(raw.get("PropertyFiles") or ()),
                          cache=raw.get("CacheConfig"),
                          retry_policies=parse_policies(raw.get("RetryPolicies"), raw["Type"], f"Step {name!r}"),
                          raw=raw)


def _check_reference(expression: str, where: str, parameters: dict[str, Parameter],
                     types: dict[str, str], files: dict[str, set[str]]) -> str | None:
    """Check one `Get`; return the step it reads, if any."""
    root, _, rest = expression.partition(".")
    if root == "Parameters":
        if rest not in parameters:
            raise ValidationError(f"{where}: {expression!r} names parameter {rest!r}, which the pipeline does not "
                                  "declare.")
        return None
    if root == "Execution":
        if rest not in EXECUTION_VARIABLES:
            raise ValidationError(f"{where}: {expression!r} is not an execution variable (known: "
                                  f"{', '.join(EXECUTION_VARIABLES)}).")
        return None
    if root != "Steps":
        raise ValidationError(f"{where}: {expression!r} must start with Parameters., Execution. or Steps.")
    step, _, path = rest.partition(".")
    if step not in types:
        raise ValidationError(f"{where}: {expression!r} reads step {step!r}, which is not a step of this pipeline.")
    if not path:
        raise ValidationError(f"{where}: {expression!r} names no property of step {step!r}.")
    if path.startswith("PropertyFiles."):
        file_name = path.split(".", 1)[1]
        if file_name not in files[step]:
            declared = ", ".join(sorted(f for f in files[step] if f)) or "none"
            raise ValidationError(f"{where}: {expression!r} reads property file {file_name!r}, which step {step!r} "
                                  f"does not declare (its PropertyFiles: {declared}).")
        return step
    properties.check_path(types[step], properties.parse_path(path, where=f"{where}: {expression!r}"),
                          where=f"{where}: {expression!r}")
    return step


def _check_acyclic(steps: dict[str, StepDefinition]) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise ValidationError(f"PipelineDefinition: the steps form a cycle: {' -> '.join(cycle)}.")
        state[name] = 1
        for other in sorted(steps[name].upstream):
            visit(other, [*path, name])
        state[name] = 2

    for name in steps:
        visit(name, [])
