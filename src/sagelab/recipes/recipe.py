"""Parse a recipe document into typed steps, and check it against an input schema.

    recipe = parse_recipe(json.loads(text))      # field errors: before anything is read
    recipe.check(schema)                          # column errors: against the input's columns and kinds
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sagelab.recipes import cleaning, encoding
from sagelab.recipes.spec import BOOLEAN, NUMERIC, Fields, RecipeError, Schema, where
from sagelab.recipes.step import Step

STEPS: dict[str, type[Step]] = {cls.kind: cls for cls in (
    cleaning.DropColumns, cleaning.SelectColumns, cleaning.Deduplicate, cleaning.ParseDates, cleaning.DropMissing,
    cleaning.Impute, cleaning.Outliers, encoding.Ordinal, encoding.OneHot, encoding.Binary, encoding.Scale,
    encoding.Log, encoding.Bin, encoding.Tfidf, encoding.Pca, encoding.Tsne, encoding.Split)}

OUTPUT_FORMATS = ("csv", "recordio-protobuf")


@dataclasses.dataclass
class Recipe:
    target: str | None
    steps: list[Step]
    output_format: str = "csv"
    document: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def split(self) -> encoding.Split | None:
        return next((s for s in self.steps if isinstance(s, encoding.Split)), None)

    def check(self, schema: Schema) -> Schema:
        """Walk the steps over the input schema; returns the schema the last step leaves."""
        if self.target is not None:
            schema.require("recipe", [self.target])
        schema = schema.copy()
        for step in self.steps:
            if self.target is not None and self.target in step.named_columns() and step.named_columns() != [
                    self.target] and step.kind not in ("drop_missing", "deduplicate", "select_columns"):
                raise RecipeError(f"{step.at}: the target {self.target!r} may only be transformed by a step "
                                  "that names it alone (it is skipped when new rows, which have no target, "
                                  "are transformed).")
            step.check(schema, self.target)
        not_numeric = [c for c, k in schema.kinds.items() if k not in (NUMERIC, BOOLEAN)]
        if not_numeric:
            raise RecipeError(f"after the last step, column(s) {', '.join(map(repr, not_numeric))} are not numeric; "
                              "the channels need numbers: drop them or encode them (one_hot, ordinal, binary, "
                              "parse_dates with drop, tfidf).")
        return schema


def parse_recipe(document: Any) -> Recipe:
    if not isinstance(document, dict):
        raise RecipeError(f"a recipe must be a JSON object with 'steps', got {type(document).__name__}.")
    unknown = sorted(set(document) - {"target", "steps", "output_format", "description"})
    if unknown:
        raise RecipeError(f"recipe: unknown field(s) {', '.join(map(repr, unknown))}; expected target, steps, "
                          "output_format, description.")
    target = document.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise RecipeError(f"recipe: 'target' must be a column name, got {target!r}.")
    output_format = document.get("output_format", "csv")
    if output_format not in OUTPUT_FORMATS:
        raise RecipeError(f"recipe: 'output_format' must be one of {', '.join(OUTPUT_FORMATS)}, got "
                          f"{output_format!r}.")
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError("recipe: 'steps' must be a non-empty list of steps.")
    steps = [parse_step(i, raw) for i, raw in enumerate(raw_steps)]
    for step in steps[:-1]:
        if isinstance(step, encoding.Split):
            raise RecipeError(f"{step.at}: split must be the last step.")
    return Recipe(target=target, steps=steps, output_format=output_format, document=document)


def parse_step(index: int, raw: Any) -> Step:
    if not isinstance(raw, dict):
        raise RecipeError(f"step {index + 1}: must be an object like {{\"step\": \"scale\", ...}}, got {raw!r}.")
    kind = raw.get("step")
    if kind not in STEPS:
        raise RecipeError(f"{where(index, str(kind))}: unknown step {kind!r}; known steps are "
                          f"{', '.join(sorted(STEPS))}.")
    return STEPS[kind](Fields(index, raw))
