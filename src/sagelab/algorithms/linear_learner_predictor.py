"""Linear Learner's artifact and its predictor.

The artifact is two files in the model directory: `model.npz` (NumPy arrays only, read with
`allow_pickle=False`) and `model.json` (what the model is and the hyperparameters it was trained with).
Weights are stored in the normalised space they were trained in, with the scaler beside them; loading folds
the scaler into the weights so a request costs one matrix product.

Requests: text/csv (no label), application/json (`{"instances": [...]}` with dense `features`, or
`data.features` dense `values` or sparse `keys`/`shape`/`values`), application/jsonlines (one instance per
line). Responses follow LL-in-formats exactly:
    binary      {"score": 0.4, "predicted_label": 0}     score = probability for the logistic loss
    multiclass  {"score": [0.1, 0.2, 0.7], "predicted_label": 2}
    regression  {"score": 0.4}
wrapped in `{"predictions": [...]}` for JSON, one object per line for JSON Lines.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import InferenceError, split_content_type

MODEL_NPZ = "model.npz"
MODEL_JSON = "model.json"
FORMAT = "sagelab-linear-learner/1"

CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")
ACCEPT_TYPES = ("application/json", "application/jsonlines", "text/csv")
DEFAULT_ACCEPT = "application/json"
_JSONLINES_ALIASES = ("application/jsonlines", "application/x-jsonlines", "application/json-lines")


@dataclasses.dataclass
class LinearModel:
    """One trained Linear Learner model: y = f(((x - mean) / scale) @ weights + bias)."""

    predictor_type: str
    loss: str
    weights: np.ndarray  # (d, k), k = num_classes for multiclass, else 1
    bias: np.ndarray  # (k,)
    feature_mean: np.ndarray  # (d,)
    feature_scale: np.ndarray  # (d,)
    label_mean: float = 0.0
    label_scale: float = 1.0
    #: Binary only: predicted_label = 1 when score > threshold (score space: probability for logistic).
    threshold: float = 0.5
    num_classes: int | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=np.float64)
        scale = np.asarray(self.feature_scale, dtype=np.float64)
        mean = np.asarray(self.feature_mean, dtype=np.float64)
        folded = weights / scale[:, None]
        offset = np.asarray(self.bias, dtype=np.float64) - mean @ folded
        if self.predictor_type == "regressor":
            folded = folded * self.label_scale
            offset = offset * self.label_scale + self.label_mean
        self._w = np.ascontiguousarray(folded)
        self._b = offset

    @property
    def feature_dim(self) -> int:
        return int(self._w.shape[0])

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs (n, k); for regression already in the label's units."""
        return np.asarray(x, dtype=np.float64) @ self._w + self._b

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores, predicted labels): scores (n,) or (n, k) probabilities for multiclass."""
        z = self.outputs(x)
        if self.predictor_type == "regressor":
            return z[:, 0], None
        if self.predictor_type == "multiclass_classifier":
            shifted = z - z.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            probs = exp / exp.sum(axis=1, keepdims=True)
            return probs, probs.argmax(axis=1)
        score = z[:, 0]
        if self.loss == "logistic":
            score = np.exp(-np.logaddexp(0.0, -score))
        return score, (score > self.threshold).astype(np.int64)

    # -- artifact ----------------------------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        np.savez(model_dir / MODEL_NPZ,
                 weights=np.asarray(self.weights, dtype=np.float64),
                 bias=np.asarray(self.bias, dtype=np.float64),
                 feature_mean=np.asarray(self.feature_mean, dtype=np.float64),
                 feature_scale=np.asarray(self.feature_scale, dtype=np.float64),
                 label_mean=np.float64(self.label_mean),
                 label_scale=np.float64(self.label_scale),
                 threshold=np.float64(self.threshold))
        meta = {"format": FORMAT, "predictor_type": self.predictor_type, "loss": self.loss,
                "num_classes": self.num_classes, "feature_dim": self.feature_dim,
                "threshold": float(self.threshold), **self.info}
        (model_dir / MODEL_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True, default=_jsonable))

    @classmethod
    def load(cls, model_dir: Path) -> LinearModel:
        meta_path, npz_path = model_dir / MODEL_JSON, model_dir / MODEL_NPZ
        if not meta_path.is_file() or not npz_path.is_file():
            raise FileNotFoundError(f"{model_dir} holds no Linear Learner model ({MODEL_JSON} and {MODEL_NPZ}).")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a {FORMAT} model (format {meta.get('format')!r}).")
        with np.load(npz_path, allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        info = {key: value for key, value in meta.items()
                if key not in ("format", "predictor_type", "loss", "num_classes", "feature_dim", "threshold")}
        return cls(predictor_type=meta["predictor_type"], loss=meta["loss"], weights=data["weights"],
                   bias=data["bias"], feature_mean=data["feature_mean"], feature_scale=data["feature_scale"],
                   label_mean=float(data["label_mean"]), label_scale=float(data["label_scale"]),
                   threshold=float(data["threshold"]), num_classes=meta.get("num_classes"), info=info)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class LinearLearnerPredictor:
    """Answers invocations for one `LinearModel` in SageMaker's Linear Learner formats."""

    content_types = CONTENT_TYPES
    accept_types = ACCEPT_TYPES
    default_accept = DEFAULT_ACCEPT

    def __init__(self, model: LinearModel):
        self.model = model

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        ctype, _ = split_content_type(content_type)
        out_type = self._accept(accept)
        if ctype == "text/csv":
            x = parse_csv(body, self.model.feature_dim)
        elif ctype == "application/json":
            x = parse_json(body, self.model.feature_dim)
        elif ctype in _JSONLINES_ALIASES:
            x = parse_jsonlines(body, self.model.feature_dim)
        elif ctype == "application/x-recordio-protobuf":
            raise InferenceError(415, "Content type application/x-recordio-protobuf is not supported yet by "
                                      "this Linear Learner; send text/csv, application/json or "
                                      "application/jsonlines.")
        else:
            raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                      f"{', '.join(CONTENT_TYPES)}.")
        scores, labels = self.model.predict(x)
        return encode(self.model.predictor_type, scores, labels, out_type), out_type

    def _accept(self, accept: str | None) -> str:
        if not accept or not accept.strip():
            return DEFAULT_ACCEPT
        for option in accept.split(","):
            kind, _ = split_content_type(option)
            if kind in ("*/*", "application/*"):
                return DEFAULT_ACCEPT
            if kind in _JSONLINES_ALIASES:
                return "application/jsonlines"
            if kind in ACCEPT_TYPES:
                return kind
        raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(ACCEPT_TYPES)}.")


# -- request decoding -------------------------------------------------------------------------------------


def _decode(body: bytes) -> str:
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray, memoryview)) else str(body)
    except UnicodeDecodeError as exc:
        raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None
    if not text.strip():
        raise InferenceError(400, "The request body is empty: send at least one record.")
    return text


def _finish(rows: np.ndarray) -> np.ndarray:
    """Linear Learner reads float32 features; rounding here makes served and training-time scores agree."""
    if not np.isfinite(rows).all():
        row, column = np.argwhere(~np.isfinite(rows))[0]
        raise InferenceError(400, f"Record {row + 1}, feature {column + 1}: {rows[row, column]!r} is not a finite "
                                  "number.")
    return rows.astype(np.float32)


def parse_csv(body: bytes, feature_dim: int) -> np.ndarray:
    text = _decode(body)
    lines = [line for line in text.splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        if len(fields) != feature_dim:
            raise InferenceError(400, f"CSV row {number} has {len(fields)} values; the model expects {feature_dim} "
                                      "features (and no label column).")
        try:
            rows.append([float(value) for value in fields])
        except ValueError:
            for column, value in enumerate(fields, start=1):
                try:
                    float(value)
                except ValueError:
                    raise InferenceError(400, f"CSV row {number}, column {column}: {value.strip()!r} is not a "
                                              "number.") from None
    return _finish(np.array(rows, dtype=np.float64).reshape(len(rows), feature_dim))


def parse_json(body: bytes, feature_dim: int) -> np.ndarray:
    try:
        document = json.loads(_decode(body))
    except json.JSONDecodeError as exc:
        raise InferenceError(400, f"The request body is not valid JSON: {exc}.") from None
    if isinstance(document, dict) and "instances" in document:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise InferenceError(400, '"instances" must be a list of records.')
    elif isinstance(document, dict) and ("features" in document or "data" in document):
        instances = [document]
    else:
        raise InferenceError(400, 'Expected {"instances": [{"features": [...]}, ...]} (or one record with '
                                  '"features" or "data").')
    if not instances:
        raise InferenceError(400, '"instances" is empty: send at least one record.')
    return _finish(np.vstack([_instance(item, feature_dim, f"Instance {i}")
                              for i, item in enumerate(instances, start=1)]))


def parse_jsonlines(body: bytes, feature_dim: int) -> np.ndarray:
    rows = []
    for number, line in enumerate(_decode(body).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InferenceError(400, f"JSON Lines line {number} is not valid JSON: {exc}.") from None
        rows.append(_instance(item, feature_dim, f"JSON Lines line {number}"))
    return _finish(np.vstack(rows))


def _instance(item: Any, feature_dim: int, where: str) -> np.ndarray:
    """One record: {"features": [...]}, {"data": {"features": {"values": [...]}}}, or sparse keys/shape/values."""
    if not isinstance(item, dict):
        raise InferenceError(400, f'{where}: expected an object with "features" or "data", got {_kind(item)}.')
    if "features" in item:
        features = item["features"]
    elif isinstance(item.get("data"), dict) and "features" in item["data"]:
        features = item["data"]["features"]
    else:
        raise InferenceError(400, f'{where}: expected "features" or "data": {{"features": ...}}.')
    if isinstance(features, dict):
        if "keys" in features:
            return _sparse(features, feature_dim, where)
        features = features.get("values")
    if not isinstance(features, list):
        raise InferenceError(400, f"{where}: features must be a list of numbers, got {_kind(features)}.")
    if len(features) != feature_dim:
        raise InferenceError(400, f"{where} has {len(features)} features; the model expects {feature_dim}.")
    return _numbers(features, where)


def _sparse(features: dict, feature_dim: int, where: str) -> np.ndarray:
    keys, values, shape = features.get("keys"), features.get("values"), features.get("shape")
    if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values):
        raise InferenceError(400, f'{where}: sparse features need "keys" and "values" lists of the same length.')
    if shape is not None and (not isinstance(shape, list) or len(shape) != 1 or shape[0] != feature_dim):
        raise InferenceError(400, f"{where}: sparse shape {shape!r} does not match the model's {feature_dim} "
                                  f"features (expected [{feature_dim}]).")
    row = np.zeros(feature_dim)
    for key in keys:
        if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < feature_dim:
            raise InferenceError(400, f"{where}: sparse key {key!r} is not a feature index in 0..{feature_dim - 1}.")
    row[np.asarray(keys, dtype=np.intp)] = _numbers(values, where)
    return row


def _numbers(values: list, where: str) -> np.ndarray:
    for column, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InferenceError(400, f"{where}, feature {column}: {value!r} is not a number.")
    return np.asarray(values, dtype=np.float64)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


# -- response encoding ------------------------------------------------------------------------------------


def records(predictor_type: str, scores: np.ndarray, labels: np.ndarray | None) -> list[dict[str, Any]]:
    if predictor_type == "regressor":
        return [{"score": value} for value in scores.tolist()]
    return [{"score": score, "predicted_label": label}
            for score, label in zip(scores.tolist(), labels.tolist(), strict=True)]


def encode(predictor_type: str, scores: np.ndarray, labels: np.ndarray | None, accept: str) -> bytes:
    if accept == "text/csv":
        # Linear Learner's CSV response is not documented (reference 5.1: uncertain). We answer one line per
        # record: "predicted_label,score" (binary), "predicted_label,score_0,...,score_k-1" (multiclass) and
        # "score" (regression).
        if predictor_type == "regressor":
            lines = [repr(value) for value in scores.tolist()]
        elif predictor_type == "multiclass_classifier":
            lines = [",".join([str(label), *map(repr, row)])
                     for label, row in zip(labels.tolist(), scores.tolist(), strict=True)]
        else:
            lines = [f"{label},{score!r}" for label, score in zip(labels.tolist(), scores.tolist(), strict=True)]
        return ("\n".join(lines) + "\n").encode()
    objects = records(predictor_type, scores, labels)
    if accept == "application/jsonlines":
        return ("\n".join(json.dumps(o) for o in objects) + "\n").encode()
    return json.dumps({"predictions": objects}).encode()
