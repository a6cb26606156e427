"""The recipe runner as a built-in processing image, `sagelab-recipe`.

The recipe comes from an input named `recipe` (one .json file), or, for a short one, from the Environment
variable `recipe` (AWS caps Environment values at 256 characters). The data is the input named `data`, or
the only other input. The job's output (the one named `output`, or its only output) receives the channels
and the transformer, laid out as `sagelab prepare` writes them.
"""

from __future__ import annotations

from pathlib import Path

from sagelab.errors import ValidationError
from sagelab.recipes.command import read_recipe_text


def _recipe(ctx):
    if ctx.environment.get("recipe"):
        return read_recipe_text(ctx.environment["recipe"], "the environment variable 'recipe'")
    folder = ctx.inputs.get("recipe")
    if folder is None:
        raise ValidationError("no recipe: set the environment variable 'recipe' to the recipe JSON, or add an "
                              "input named 'recipe'.")
    files = sorted(Path(folder).rglob("*.json")) if Path(folder).is_dir() else [Path(folder)]
    if len(files) != 1:
        raise ValidationError(f"the input 'recipe' must hold exactly one .json file, found {len(files)}.")
    return read_recipe_text(files[0].read_text(), f"recipe file {files[0].name}")


def _only(folders: dict[str, Path], preferred: str, what: str) -> Path:
    if preferred in folders:
        return folders[preferred]
    if len(folders) == 1:
        return next(iter(folders.values()))
    raise ValidationError(f"name the {what} {preferred!r}: the job has {len(folders)} ({', '.join(folders)}).")


def run_recipe(ctx) -> None:
    from sagelab.recipes.runner import prepare

    recipe = _recipe(ctx)
    data = _only({k: v for k, v in ctx.inputs.items() if k != "recipe"}, "data", "data input")
    output = _only(ctx.outputs, "output", "output")
    ctx.print(f"sagelab recipe: {len(recipe.steps)} steps over {data}")
    result = prepare(recipe, data, output)
    ctx.print("sagelab recipe: " + ", ".join(f"{c}: {n} rows" for c, n in result.rows.items())
              + f"; {len(result.feature_columns)} features")
