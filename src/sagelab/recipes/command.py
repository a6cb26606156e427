"""`sagelab prepare --recipe FILE --input SOURCE --output DEST`: run a recipe over lake data or local files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sagelab.lake.client import fetch, is_s3, open_lake, publish
from sagelab.recipes.recipe import parse_recipe
from sagelab.recipes.spec import RecipeError


def read_recipe_text(text: str, where: str):
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RecipeError(f"{where} is not valid JSON: {exc}.") from None
    return parse_recipe(document)


def run_prepare(recipe_location: str, source: str, output: str, *, endpoint_url: str | None = None,
                home: str | None = None) -> tuple[dict[str, int], list[str]]:
    from sagelab.recipes.runner import prepare

    needs_lake = any(is_s3(x) for x in (recipe_location, source, output))
    lake = open_lake(endpoint_url=endpoint_url, home=home) if needs_lake else None
    with tempfile.TemporaryDirectory(prefix="sagelab-prepare-") as scratch:
        recipe_path = fetch(lake, recipe_location, Path(scratch) / "recipe") if lake else Path(recipe_location)
        # The whole recipe is checked before the input is fetched or read.
        recipe = read_recipe_text(recipe_path.read_text(), recipe_location)
        local = fetch(lake, source, Path(scratch) / "input") if lake else Path(source)
        out = Path(scratch) / "output" if is_s3(output) else Path(output)
        result = prepare(recipe, local, out)
        files = publish(lake, out, output) if is_s3(output) else [str(p) for p in result.files]
        return result.rows, files
