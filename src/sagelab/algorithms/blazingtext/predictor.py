"""BlazingText's predictors. The request's Content-Type must equal its Accept (as on AWS); no Accept, or
`*/*`, takes the content type.

Supervised (model.bin):
    application/json       {"instances": ["text", ...], "configuration": {"k": 2}}
                           -> [{"label": ["__label__1", "__label__2"], "prob": [0.9, 0.1]}, ...]  (a bare array)
    application/jsonlines  {"source": "text", "k": 2} per line -> {"label": [...], "prob": [...]} per line
Word2Vec (vectors.bin):
    application/json       {"instances": ["word", ...]} -> [{"vector": [...], "word": "word"}, ...]
                           (words never seen get zeros, or their subwords' vector when trained with subwords)
Errors: 415 for another content type, 406 for an Accept that differs, 400 naming the instance or line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import InferenceError, split_content_type
from sagelab.algorithms.blazingtext.files import MODEL_BIN, VECTORS_BIN

JSON, JSONLINES = "application/json", "application/jsonlines"
_JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/jsonl")


def load_predictor(model_dir: Path) -> Any:
    import fasttext

    if (model_dir / MODEL_BIN).is_file():
        return SupervisedPredictor(fasttext.load_model(str(model_dir / MODEL_BIN)))
    if (model_dir / VECTORS_BIN).is_file():
        return Word2VecPredictor(fasttext.load_model(str(model_dir / VECTORS_BIN)))
    raise FileNotFoundError(f"{model_dir} holds no BlazingText model ({MODEL_BIN} or {VECTORS_BIN}).")


def _negotiate(content_type: str, accept: str, supported: tuple[str, ...]) -> str:
    kind, _ = split_content_type(content_type)
    kind = JSONLINES if kind in _JSONLINES_ALIASES else kind
    if kind not in supported:
        raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                  f"{', '.join(supported)}.")
    wanted, _ = split_content_type(accept.split(",")[0] if accept else "")
    wanted = JSONLINES if wanted in _JSONLINES_ALIASES else wanted
    if wanted not in ("", "*/*", "application/*", kind):
        raise InferenceError(406, f"Accept {accept!r} is not supported: BlazingText answers in the request's "
                                  f"content type ({kind}).")
    return kind


def _json(body: bytes, where: str) -> Any:
    try:
        return json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InferenceError(400, f"{where} is not valid UTF-8 JSON: {exc}.") from None


def _instances(body: bytes, what: str) -> tuple[list[str], dict]:
    if not bytes(body).strip():
        raise InferenceError(400, "The request body is empty: send {\"instances\": [...]}.")
    document = _json(body, "The request body")
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise InferenceError(400, f'Expected {{"instances": [{what}, ...]}}.')
    instances = document["instances"]
    if not instances:
        raise InferenceError(400, '"instances" is empty: send at least one.')
    for i, item in enumerate(instances, start=1):
        if not isinstance(item, str):
            raise InferenceError(400, f"Instance {i}: expected {what} (a string), got {json.dumps(item)}.")
    configuration = document.get("configuration", {})
    if not isinstance(configuration, dict):
        raise InferenceError(400, f'"configuration" must be an object, got {json.dumps(configuration)}.')
    return instances, configuration


def _k(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InferenceError(400, f"{where}: \"k\" must be an integer >= 1, got {json.dumps(value)}.")
    return value


class SupervisedPredictor:
    content_types = (JSON, JSONLINES)
    accept_types = (JSON, JSONLINES)
    default_accept = JSON

    def __init__(self, model: Any):
        self.model = model

    def classify(self, texts: list[str], k: int) -> list[dict[str, Any]]:
        k = min(k, len(self.model.labels))
        labels, probabilities = self.model.predict([" ".join(t.split()) for t in texts], k=k)
        return [{"label": list(label), "prob": [float(p) for p in prob]}
                for label, prob in zip(labels, probabilities, strict=True)]

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind = _negotiate(content_type, accept, self.content_types)
        if kind == JSON:
            texts, configuration = _instances(body, "a text")
            k = _k(configuration.get("k", 1), "configuration")
            return json.dumps(self.classify(texts, k)).encode(), JSON
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None
        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            entry = _json(line.encode(), f"JSON Lines line {number}")
            if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
                raise InferenceError(400, f'JSON Lines line {number}: expected {{"source": "<text>", "k": 1}}.')
            row = self.classify([entry["source"]], _k(entry.get("k", 1), f"JSON Lines line {number}"))[0]
            out.append(json.dumps({"prob": row["prob"], "label": row["label"]}))
        if not out:
            raise InferenceError(400, "The request body is empty: send one JSON object per line.")
        return ("\n".join(out) + "\n").encode(), JSONLINES


class Word2VecPredictor:
    content_types = (JSON,)
    accept_types = (JSON,)
    default_accept = JSON

    def __init__(self, model: Any):
        self.model = model

    def vectors(self, words: list[str]) -> list[dict[str, Any]]:
        return [{"vector": self.model.get_word_vector(word).tolist(), "word": word} for word in words]

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        _negotiate(content_type, accept, self.content_types)
        words, _ = _instances(body, "a word")
        for i, word in enumerate(words, start=1):
            if not word.strip() or len(word.split()) != 1:
                raise InferenceError(400, f"Instance {i}: expected one word (no spaces), got {json.dumps(word)}.")
        return json.dumps(self.vectors([w.strip() for w in words])).encode(), JSON
