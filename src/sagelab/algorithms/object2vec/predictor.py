"""Object2Vec's predictor.

    application/json       {"instances": [{"in0": [...], "in1": [...]}, ...]}
                           -> {"predictions": [{"scores": [p0, p1, ...]}]}  (softmax probabilities; regression:
                              one value)
    encoder embeddings     instances with only "in0" (or only "in1"): {"predictions": [{"embeddings": [...]}]};
                           Content-Type `application/json; infer_max_seqlens=<in0 max>,<in1 max>` cuts the
                           sequences to those lengths
    application/jsonlines  one instance per line -> one bare object per line
Errors: 415 / 406 for other types; 400 naming the instance and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sagelab.algorithms.base import DataError, InferenceError, split_content_type
from sagelab.algorithms.first_party.io import json_instances
from sagelab.algorithms.object2vec import network as net
from sagelab.algorithms.object2vec.pairs import tokens
from sagelab.algorithms.torch_threads import torch_threads

JSON, JSONLINES = "application/json", "application/jsonlines"
_JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/jsonl")


class Object2VecPredictor:
    content_types = (JSON, JSONLINES)
    accept_types = (JSON, JSONLINES)
    default_accept = JSON

    def __init__(self, model_dir: Path):
        self.net = net.load(model_dir)
        self.settings = self.net.settings

    def _records(self, body: bytes, kind: str) -> list[tuple[str, Any]]:
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InferenceError(400, f"The request body is not UTF-8 JSON: {exc}.") from None
        if not text.strip():
            raise InferenceError(400, 'The request body is empty: send {"instances": [{"in0": [...], "in1": [...]}]}.')
        if kind == JSON:
            _, instances = json_instances(text, '{"in0": [...], "in1": [...]}')
            return [(f"Instance {i}", item) for i, item in enumerate(instances, start=1)]
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"JSON Lines line {number}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InferenceError(400, f"JSON Lines line {number} is not valid JSON: {exc}.") from None
        return rows

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind, params = split_content_type(content_type)
        kind = JSONLINES if kind in _JSONLINES_ALIASES else kind
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                      f"{', '.join(self.content_types)}.")
        wanted, _ = split_content_type((accept or "").split(",")[0])
        wanted = JSONLINES if wanted in _JSONLINES_ALIASES else wanted
        if wanted in ("", "*/*", "application/*"):
            wanted = JSON
        if wanted not in self.accept_types:
            raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")
        s = self.settings
        limits = [s["enc0_max_seq_len"], s["enc1_max_seq_len"]]
        if "infer_max_seqlens" in params:
            try:
                given = [int(v) for v in params["infer_max_seqlens"].split(",")]
                if len(given) != 2 or min(given) < 1:
                    raise ValueError
            except ValueError:
                raise InferenceError(400, f"infer_max_seqlens must be two positive integers <in0>,<in1>, got "
                                          f"{params['infer_max_seqlens']!r}.") from None
            limits = given
        records = self._records(body, kind)
        sides: set[str] = set()
        sequences: dict[str, list[list[int]]] = {"in0": [], "in1": []}
        for where, item in records:
            if not isinstance(item, dict) or not ({"in0", "in1"} & set(item)):
                raise InferenceError(400, f'{where}: expected an object with "in0" and "in1" (or only one of them for '
                                          "encoder embeddings).")
            present = tuple(field for field in ("in0", "in1") if field in item)
            sides.add(",".join(present))
            for field in present:
                vocab = s["enc0_vocab_size"] if field == "in0" else s["enc1_vocab_size"]
                try:
                    sequences[field].append(tokens(item[field], where, field, vocab))
                except DataError as exc:
                    raise InferenceError(400, str(exc)) from None
        if len(sides) > 1:
            raise InferenceError(400, 'Every instance must have the same fields: "in0" and "in1" for scores, or only '
                                      "one of them for encoder embeddings.")
        side = sides.pop()
        with torch_threads(len(records) >= 10_000), torch.no_grad():
            if side == "in0,in1":
                in0 = net.batch_ids(sequences["in0"], s["enc0_vocab_size"], limits[0])
                in1 = net.batch_ids(sequences["in1"], s["enc1_vocab_size"], limits[1])
                output = self.net(in0, in1)
                values = torch.softmax(output, dim=1) if s["output_layer"] == "softmax" else output
                rows = [{"scores": row} for row in values.tolist()]
            else:
                index = 0 if side == "in0" else 1
                vocab = s["enc0_vocab_size"] if index == 0 else s["enc1_vocab_size"]
                ids = net.batch_ids(sequences[side], vocab, limits[index])
                rows = [{"embeddings": row} for row in self.net.encoder(index)(ids).tolist()]
        if wanted == JSON:
            return json.dumps({"predictions": rows}).encode(), JSON
        return "".join(json.dumps(row) + "\n" for row in rows).encode(), JSONLINES
