"""Linear Learner's model and its artifact.

The artifact is two files in the model directory: `model.npz` (NumPy arrays only, read with
`allow_pickle=False`) and `model.json` (what the model is and the hyperparameters it was trained with).
Weights are stored in the normalised space they were trained in, with the scaler beside them; loading folds
the scaler into the weights so a request costs one matrix product.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.first_party.artifact import read_artifact, write_artifact

FORMAT = "sagelab-linear-learner/1"


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

    def outputs(self, x: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """Raw outputs (n, k); for regression already in the label's units."""
        x = x.astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        return np.asarray(x @ self._w) + self._b

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
        arrays = dict(weights=np.asarray(self.weights, dtype=np.float64),
                 bias=np.asarray(self.bias, dtype=np.float64),
                 feature_mean=np.asarray(self.feature_mean, dtype=np.float64),
                 feature_scale=np.asarray(self.feature_scale, dtype=np.float64),
                 label_mean=np.float64(self.label_mean),
                 label_scale=np.float64(self.label_scale),
                 threshold=np.float64(self.threshold))
        write_artifact(model_dir, FORMAT, arrays, {
            "predictor_type": self.predictor_type, "loss": self.loss, "num_classes": self.num_classes,
            "feature_dim": self.feature_dim, "threshold": float(self.threshold), **self.info},
            default=_jsonable)

    @classmethod
    def load(cls, model_dir: Path) -> LinearModel:
        meta, data = read_artifact(model_dir, FORMAT, "Linear Learner")
        info = {key: value for key, value in meta.items()
                if key not in ("predictor_type", "loss", "num_classes", "feature_dim", "threshold")}
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
