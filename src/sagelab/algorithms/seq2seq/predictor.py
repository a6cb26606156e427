"""Seq2Seq's predictor: beam search (the model's beam_size) over each source sentence; Content-Type and Accept
are the same type, as SageMaker's seq2seq requires.

    application/json                 {"instances": [{"data": "can you drive a car ?",
                                                     "configuration": {"attention_matrix": "true"}}]}
                                     -> {"predictions": [{"target": "...", "matrix": [[...], ...]}]}
                                     tokens split on whitespace, unknown ones read as <unk>; "matrix" (only when
                                     asked) has one row per target token and one weight per source token
    application/x-recordio-protobuf  one record per sentence, its ids in features["source"] (or
                                     features["values"]) -> one record per sentence, the ids in
                                     features["target"] (int32)
    application/jsonlines            (batch transform) {"source": "..."} per line -> {"target": "..."} per line
Sources longer than max_seq_len_source are truncated; an empty protobuf source reads as one `<unk>`. Errors: 415 / 406 for other types (or an Accept other than
the Content-Type); 400 naming the instance, line or record and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import DataError, InferenceError, split_content_type
from sagelab.algorithms.first_party.io import json_instances
from sagelab.algorithms.seq2seq import data as s2s
from sagelab.algorithms.seq2seq import network as net
from sagelab.algorithms.torch_threads import torch_threads

JSON, JSONLINES, PROTOBUF = "application/json", "application/jsonlines", "application/x-recordio-protobuf"
_JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/json-lines", "application/jsonl")


def _kind(value: str) -> str:
    kind, _ = split_content_type(value)
    return JSONLINES if kind in _JSONLINES_ALIASES else kind


def _is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


class Seq2SeqPredictor:
    content_types = (JSON, PROTOBUF, JSONLINES)
    accept_types = (JSON, PROTOBUF, JSONLINES)
    default_accept = JSON

    def __init__(self, model_dir: Path):
        self.net = net.load(model_dir)
        self.settings = self.net.settings
        self.source_vocab = s2s.parse_vocab((model_dir / s2s.SOURCE_VOCAB).read_text(encoding="utf-8"),
                                            s2s.SOURCE_VOCAB)
        self.target_vocab = s2s.parse_vocab((model_dir / s2s.TARGET_VOCAB).read_text(encoding="utf-8"),
                                            s2s.TARGET_VOCAB)

    def translate(self, sources: list[list[int]]) -> list[tuple[list[int], list[list[float]]]]:
        s = self.settings
        sources = [ids[:s["max_seq_len_source"]] or [s2s.UNK_ID] for ids in sources]
        out = []
        with torch_threads(False):
            for start in range(0, len(sources), net.BEAM_BATCH):
                out += self.net.beam_search(sources[start:start + net.BEAM_BATCH], s["beam_size"],
                                            s["max_seq_len_target"])
        return out

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind = _kind(content_type)
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                      f"{', '.join(self.content_types)}.")
        wanted = _kind((accept or "").split(",")[0])
        if wanted in ("", "*/*", "application/*"):
            wanted = kind
        if wanted not in self.accept_types:
            raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")
        if wanted != kind:
            raise InferenceError(406, f"Accept {accept!r} differs from Content-Type {content_type!r}; seq2seq answers "
                                      "in the type it is sent (both must be the same).")
        if not body.strip():
            raise InferenceError(400, "The request body is empty.")
        if kind == PROTOBUF:
            try:
                sources = s2s.request_sources(body, self.source_vocab)
            except DataError as exc:  # RecordIOError is one
                raise InferenceError(400, f"recordIO-protobuf request, {exc}") from None
            if not sources:
                raise InferenceError(400, "The recordIO-protobuf request holds no records.")
            return s2s.response_targets([ids for ids, _ in self.translate(sources)]), PROTOBUF
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None
        if kind == JSON:
            return self._json(text), JSON
        return self._jsonlines(text), JSONLINES

    def _sentence(self, value: Any, where: str, field: str) -> list[int]:
        if not isinstance(value, str) or not value.split():
            raise InferenceError(400, f'{where}: "{field}" must be a non-empty string of whitespace-separated tokens, '
                                      f"got {json.dumps(value)[:100]}.")
        return self.source_vocab.ids(value)

    def _json(self, text: str) -> bytes:
        _, instances = json_instances(text, '{"data": "source sentence"}')
        sources, matrices = [], []
        for number, item in enumerate(instances, start=1):
            where = f"Instance {number}"
            if not isinstance(item, dict) or "data" not in item:
                raise InferenceError(400, f'{where}: expected an object with "data" (the source sentence).')
            configuration = item.get("configuration") or {}
            if not isinstance(configuration, dict):
                raise InferenceError(400, f'{where}: "configuration" must be an object such as '
                                          '{"attention_matrix": "true"}.')
            sources.append(self._sentence(item["data"], where, "data"))
            matrices.append(_is_true(configuration.get("attention_matrix", False)))
        rows = []
        for (ids, attention), matrix in zip(self.translate(sources), matrices, strict=True):
            row: dict[str, Any] = {"target": self.target_vocab.sentence(ids)}
            if matrix:
                row["matrix"] = attention
            rows.append(row)
        return json.dumps({"predictions": rows}).encode()

    def _jsonlines(self, text: str) -> bytes:
        sources = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"JSON Lines line {number}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InferenceError(400, f"{where} is not valid JSON: {exc}.") from None
            if not isinstance(item, dict) or "source" not in item:
                raise InferenceError(400, f'{where}: expected an object with "source" (the source sentence).')
            sources.append(self._sentence(item["source"], where, "source"))
        return "".join(json.dumps({"target": self.target_vocab.sentence(ids)}) + "\n"
                       for ids, _ in self.translate(sources)).encode()

