"""Table mappings: DMS's JSON of selection and transformation rules, parsed once when a task is created.

Selection rules include or exclude tables by schema and table name, where `%` matches any run of
characters (DMS's only wildcard); a table is replicated when some include rule selects it and no exclude
rule does. Transformation rules then rename, prefix, suffix or change the case of schemas, tables and
columns, or remove columns. What is refused names the rule and the field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from sagelab.dms.errors import InvalidParameterValue

_TARGETS = ("schema", "table", "column")
_ACTIONS = ("rename", "remove-column", "add-prefix", "remove-prefix", "add-suffix", "remove-suffix",
            "convert-lowercase", "convert-uppercase")
_NEEDS_VALUE = ("rename", "add-prefix", "add-suffix", "remove-prefix", "remove-suffix")


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if part == "%" else re.escape(part) for part in re.split(r"(%)", text)),
                      re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Locator:
    schema: re.Pattern[str]
    table: re.Pattern[str]
    column: re.Pattern[str] | None = None

    def selects(self, schema: str, table: str, column: str | None = None) -> bool:
        if not (self.schema.fullmatch(schema) and self.table.fullmatch(table)):
            return False
        return column is None or self.column is None or bool(self.column.fullmatch(column))


@dataclasses.dataclass(frozen=True)
class Selection:
    locator: Locator
    include: bool


@dataclasses.dataclass(frozen=True)
class Transformation:
    target: str
    action: str
    locator: Locator
    value: str = ""

    def apply(self, name: str) -> str:
        if self.action == "rename":
            return self.value
        if self.action == "add-prefix":
            return self.value + name
        if self.action == "add-suffix":
            return name + self.value
        if self.action == "remove-prefix":
            return name[len(self.value):] if name.startswith(self.value) else name
        if self.action == "remove-suffix":
            return name[:-len(self.value)] if self.value and name.endswith(self.value) else name
        if self.action == "convert-lowercase":
            return name.lower()
        if self.action == "convert-uppercase":
            return name.upper()
        return name


@dataclasses.dataclass(frozen=True)
class TargetTable:
    """Where one source table goes: its target schema and table names and its columns (source -> target)."""

    schema: str
    table: str
    columns: dict[str, str]


@dataclasses.dataclass(frozen=True)
class TableMappings:
    selections: tuple[Selection, ...]
    transformations: tuple[Transformation, ...]

    def selects(self, schema: str, table: str) -> bool:
        chosen = [s.include for s in self.selections if s.locator.selects(schema, table)]
        return bool(chosen) and all(chosen)

    def target(self, schema: str, table: str, columns: list[str]) -> TargetTable:
        """The target of a selected table with these source columns, every transformation applied in order."""
        target_schema, target_table = schema, table
        mapped = {c: c for c in columns}
        for rule in self.transformations:
            if rule.target == "schema" and rule.locator.schema.fullmatch(schema):
                target_schema = rule.apply(target_schema)
            elif rule.target == "table" and rule.locator.selects(schema, table):
                target_table = rule.apply(target_table)
            elif rule.target == "column" and rule.locator.selects(schema, table):
                for source in [c for c in mapped if rule.locator.selects(schema, table, c)]:
                    if rule.action == "remove-column":
                        del mapped[source]
                    else:
                        mapped[source] = rule.apply(mapped[source])
        return TargetTable(target_schema, target_table, mapped)


def parse(text: str) -> TableMappings:
    """Parse a task's TableMappings, or raise InvalidParameterValue naming what is wrong."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InvalidParameterValue(f"TableMappings is not valid JSON: {error}.") from None
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, list) or not rules:
        raise InvalidParameterValue('TableMappings must be a JSON object with a non-empty "rules" list.')
    selections: list[Selection] = []
    transformations: list[Transformation] = []
    for index, rule in enumerate(rules, 1):
        where = f"TableMappings rule {rule.get('rule-name', index) if isinstance(rule, dict) else index}"
        if not isinstance(rule, dict):
            raise InvalidParameterValue(f"{where} must be a JSON object; got {type(rule).__name__}.")
        kind = rule.get("rule-type")
        if kind == "selection":
            selections.append(_selection(rule, where))
        elif kind == "transformation":
            transformations.append(_transformation(rule, where))
        else:
            raise InvalidParameterValue(f'{where}: "rule-type" must be "selection" or "transformation"; '
                                        f"got {kind!r}.")
    if not any(s.include for s in selections):
        raise InvalidParameterValue("TableMappings must have at least one selection rule that includes tables.")
    return TableMappings(tuple(selections), tuple(transformations))


def _locator(rule: dict[str, Any], where: str, *, column: bool = False) -> Locator:
    locator = rule.get("object-locator")
    if not isinstance(locator, dict):
        raise InvalidParameterValue(f'{where}: "object-locator" must be an object with "schema-name".')
    names = {}
    for field in ("schema-name", "table-name", "column-name"):
        value = locator.get(field, "%")
        if not isinstance(value, str) or not value:
            raise InvalidParameterValue(f'{where}: "object-locator"."{field}" must be a non-empty string; '
                                        f"got {value!r}.")
        names[field] = value
    if "schema-name" not in locator:
        raise InvalidParameterValue(f'{where}: "object-locator" needs "schema-name".')
    return Locator(_pattern(names["schema-name"]), _pattern(names["table-name"]),
                   _pattern(names["column-name"]) if column else None)


def _selection(rule: dict[str, Any], where: str) -> Selection:
    action = rule.get("rule-action")
    if action not in ("include", "exclude", "explicit"):
        raise InvalidParameterValue(f'{where}: "rule-action" of a selection must be include, exclude or '
                                    f"explicit; got {action!r}.")
    return Selection(_locator(rule, where), action != "exclude")


def _transformation(rule: dict[str, Any], where: str) -> Transformation:
    target, action = rule.get("rule-target"), rule.get("rule-action")
    if target not in _TARGETS:
        raise InvalidParameterValue(f'{where}: "rule-target" must be one of {", ".join(_TARGETS)}; got {target!r}.')
    if action not in _ACTIONS:
        raise InvalidParameterValue(f'{where}: "rule-action" must be one of {", ".join(_ACTIONS)}; got {action!r}.')
    if action == "remove-column" and target != "column":
        raise InvalidParameterValue(f'{where}: "remove-column" needs "rule-target": "column"; got {target!r}.')
    value = rule.get("value", "")
    if action in _NEEDS_VALUE and (not isinstance(value, str) or not value):
        raise InvalidParameterValue(f'{where}: "{action}" needs a non-empty "value"; got {value!r}.')
    return Transformation(target, action, _locator(rule, where, column=target == "column"), value or "")
