"""The fitted recipe as a serving container, `sagelab-recipe`: the first container of an inference pipeline.

The image is the one that runs recipes as processing jobs; as a model container its ModelDataUrl is the
job's `transformer/` output (a prefix) or a model.tar.gz holding `transformer.json`. It answers raw rows with
the feature rows the recipe's channels were written from, so the next container (XGBoost, Linear Learner...)
sees requests exactly like its training data:

- text/csv in: rows without a header, in the recipe's input column order (the target may be left out);
- application/json in: a list of objects keyed by column name, or {"instances": [...]} of them;
- application/jsonlines in: one such object a line;
- text/csv out: the features, no header.

It serves only: a training job cannot select it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from sagelab.algorithms.base import InferenceError, split_content_type
from sagelab.recipes.spec import RecipeError
from sagelab.recipes.transformer import RecipeTransformer

TRANSFORMER_NAME = "transformer.json"
CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"


class RecipeServing:
    name = "sagelab-recipe"
    image_repositories = ("sagelab-recipe",)

    def load(self, model_dir: Path) -> RecipePredictor:
        found = sorted(Path(model_dir).rglob(TRANSFORMER_NAME))
        if len(found) != 1:
            raise FileNotFoundError(f"the model data must hold exactly one {TRANSFORMER_NAME} (a recipe's "
                                    f"transformer/ output), found {len(found)}.")
        return RecipePredictor(RecipeTransformer.load(found[0]))


class RecipePredictor:
    content_types = (CSV, JSON, JSONLINES)
    accept_types = (CSV,)
    default_accept = CSV

    def __init__(self, transformer: RecipeTransformer):
        self.transformer = transformer

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind = split_content_type(content_type)[0] or CSV
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported by the recipe transformer. "
                                      f"Supported: {', '.join(self.content_types)}.")
        wanted = split_content_type(accept)[0]
        if wanted not in ("", "*/*", CSV):
            raise InferenceError(406, f"Accept type {accept!r} is not supported by the recipe transformer. "
                                      f"Supported: {CSV}.")
        try:
            if kind == CSV:
                return self.transformer.transform_csv(body), CSV
            features = self.transformer.transform(_records(body, kind))
        except (RecipeError, ValueError) as exc:
            message = exc.message if isinstance(exc, RecipeError) else str(exc)
            raise InferenceError(400, f"The recipe transformer cannot read the request: {message}") from exc
        out = io.StringIO()
        pd.DataFrame(features).to_csv(out, header=False, index=False, na_rep="")
        return out.getvalue().encode(), CSV


def _records(body: bytes, kind: str) -> list:
    if kind == JSONLINES:
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    document = json.loads(body)
    if isinstance(document, dict):
        document = document.get("instances")
    if not isinstance(document, list):
        raise ValueError("a JSON body must be a list of rows, or an object whose 'instances' is one.")
    return document
