"""DeepAR's predictor: sampled forecasts of prediction_length points after each instance's last point.

    application/json       {"instances": [{"start": "2020-01-01 00:00:00", "target": [...], "cat": [0],
                                           "dynamic_feat": [[...]]}],
                            "configuration": {"num_samples": 50, "output_types": ["mean", "quantiles", "samples"],
                                              "quantiles": ["0.5", "0.9"]}}
                           -> {"predictions": [{"mean": [...], "quantiles": {"0.5": [...], "0.9": [...]},
                                                "samples": [[...], ...]}]}
    application/jsonlines  one instance per line -> one prediction object per line; the configuration comes
                           from the environment variable DEEPAR_INFERENCE_CONFIG (batch transform), by default
                           {"num_samples": 100, "output_types": ["mean", "quantiles"], "quantiles": ["0.1", ..., "0.9"]}
`cat` and `dynamic_feat` are required when the model was trained with them; dynamic_feat then covers
len(target) + prediction_length points. Sampling is seeded: the same request gets the same answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagelab.algorithms.base import DataError, InferenceError, split_content_type
from sagelab.algorithms.deepar import network as net
from sagelab.algorithms.deepar.series import Series, parse_series
from sagelab.algorithms.first_party.io import json_instances
from sagelab.algorithms.torch_threads import torch_threads

JSON, JSONLINES = "application/json", "application/jsonlines"
_JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/jsonl")
OUTPUT_TYPES = ("mean", "quantiles", "samples")
DEFAULT_CONFIGURATION = {"num_samples": 100, "output_types": ["mean", "quantiles"],
                         "quantiles": ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]}


def _configuration(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InferenceError(400, f"{where} must be an object, got {json.dumps(raw)}.")
    config = {**DEFAULT_CONFIGURATION, **raw}
    samples = config["num_samples"]
    if isinstance(samples, str) and samples.isdigit():
        samples = int(samples)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 10_000:
        raise InferenceError(400, f'{where}: "num_samples" must be an integer 1..10000, got {json.dumps(samples)}.')
    types = config["output_types"]
    if not isinstance(types, list) or not types or any(t not in OUTPUT_TYPES for t in types):
        raise InferenceError(400, f'{where}: "output_types" must be a list of {", ".join(OUTPUT_TYPES)}, got '
                                  f"{json.dumps(types)}.")
    quantiles = config["quantiles"]
    parsed = []
    if not isinstance(quantiles, list):
        raise InferenceError(400, f'{where}: "quantiles" must be a list such as ["0.1", "0.9"], got '
                                  f"{json.dumps(quantiles)}.")
    for q in quantiles:
        try:
            value = float(q)
        except (TypeError, ValueError):
            value = -1.0
        if isinstance(q, bool) or not 0 < value < 1:
            raise InferenceError(400, f'{where}: quantile {json.dumps(q)} is not a number in (0, 1).')
        parsed.append((str(q), value))
    return {"num_samples": samples, "output_types": list(dict.fromkeys(types)), "quantiles": parsed}


class DeepARPredictor:
    content_types = (JSON, JSONLINES)
    accept_types = (JSON, JSONLINES)
    default_accept = JSON

    def __init__(self, model_dir: Path):
        self.net = net.load(model_dir)
        settings = self.net.settings
        self.windows = net.Windows(settings)
        self.horizon = int(settings["prediction_length"])

    def _series(self, entry: Any, where: str) -> Series:
        settings = self.net.settings
        uses_dynamic = settings["num_dynamic_feat"] > 0
        try:
            series = parse_series(entry, where, future=self.horizon if uses_dynamic else 0)
        except DataError as exc:
            raise InferenceError(400, str(exc)) from None
        if not uses_dynamic:
            series.dynamic_feat = None
        elif series.dynamic_feat is None or series.dynamic_feat.shape[0] != settings["num_dynamic_feat"]:
            got = 0 if series.dynamic_feat is None else series.dynamic_feat.shape[0]
            raise InferenceError(400, f'{where}: "dynamic_feat" must hold the {settings["num_dynamic_feat"]} dynamic '
                                      f"feature(s) the model was trained with, got {got}.")
        cardinality = settings["cardinality"]
        if cardinality:
            if len(series.cat) != len(cardinality):
                raise InferenceError(400, f'{where}: "cat" must hold the {len(cardinality)} categorical feature(s) the '
                                          f"model was trained with, got {json.dumps(series.cat)}.")
            for i, (c, limit) in enumerate(zip(series.cat, cardinality, strict=True)):
                if c >= limit:
                    raise InferenceError(400, f'{where}: "cat"[{i}] is {c}; the model knows categories 0..{limit - 1}.')
        if np.isnan(series.target).all():
            raise InferenceError(400, f'{where}: every "target" value is missing.')
        return series

    def forecast(self, series: list[Series], config: dict[str, Any]) -> list[dict[str, Any]]:
        generator = torch.Generator().manual_seed(0)
        with torch_threads(len(series) * config["num_samples"] >= 100_000):
            paths = net.sample_paths(self.net, self.windows, series, config["num_samples"], generator)
        out = []
        for samples in paths:
            row: dict[str, Any] = {}
            for kind in config["output_types"]:
                if kind == "mean":
                    row["mean"] = samples.mean(axis=0).tolist()
                elif kind == "quantiles":
                    row["quantiles"] = {name: np.quantile(samples, q, axis=0).tolist()
                                        for name, q in config["quantiles"]}
                else:
                    row["samples"] = samples.tolist()
            out.append(row)
        return out

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind, _ = split_content_type(content_type)
        kind = JSONLINES if kind in _JSONLINES_ALIASES else kind
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                      f"{', '.join(self.content_types)}.")
        wanted, _ = split_content_type((accept or "").split(",")[0])
        wanted = JSONLINES if wanted in _JSONLINES_ALIASES else wanted
        if wanted in ("", "*/*", "application/*"):
            wanted = kind
        if wanted not in self.accept_types:
            raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InferenceError(400, f"The request body is not UTF-8 JSON: {exc}.") from None
        if not text.strip():
            raise InferenceError(400, 'The request body is empty: send {"instances": [...]}.')
        if kind == JSON:
            document, instances = json_instances(text, '{"start": ..., "target": [...]}')
            config = _configuration(document.get("configuration", {}), '"configuration"')
            series = [self._series(item, f"Instance {i}") for i, item in enumerate(instances, start=1)]
        else:
            config = _configuration(json.loads(os.environ.get("DEEPAR_INFERENCE_CONFIG") or "{}"),
                                    "DEEPAR_INFERENCE_CONFIG")
            series = []
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InferenceError(400, f"JSON Lines line {number} is not valid JSON: {exc}.") from None
                    series.append(self._series(entry, f"JSON Lines line {number}"))
        rows = self.forecast(series, config)
        if wanted == JSON:
            return json.dumps({"predictions": rows}).encode(), JSON
        return "".join(json.dumps(row) + "\n" for row in rows).encode(), JSONLINES
