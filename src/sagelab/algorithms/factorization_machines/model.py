"""A factorization machine: the model, its gradients and its artifact.

    y(x) = w0 + sum_i w_i x_i + 1/2 sum_f [ (sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2 ]

(pairwise interactions only, as SageMaker's FM). For a binary classifier the score is sigmoid(y) and the
predicted label is 1 when the score is >= 0.5; for a regressor the score is y. Features may be dense or sparse
(CSR): every product below works on both.

The artifact is `model.npz` (w0, w, V; read with allow_pickle=False) beside `model.json`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.first_party.artifact import read_artifact, write_artifact

FORMAT = "sagelab-factorization-machines/1"
BINARY = "binary_classifier"
REGRESSOR = "regressor"


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


@dataclasses.dataclass
class FMModel:
    predictor_type: str
    w0: float
    w: np.ndarray  # (d,)
    v: np.ndarray  # (d, k)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        return int(self.w.shape[0])

    def forward(self, x: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """(y, x @ V, x squared) for a batch: the raw output and what the gradient reuses."""
        xv = np.asarray(x @ self.v)
        x2 = x.multiply(x) if sp.issparse(x) else x * x
        pair = 0.5 * (np.sum(xv * xv, axis=1) - np.asarray(x2 @ (self.v * self.v)).sum(axis=1))
        return self.w0 + np.asarray(x @ self.w).ravel() + pair, xv, x2

    def gradients(self, x: Any, g: np.ndarray, xv: np.ndarray, x2: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """Gradients of mean(loss) for dloss/dy = g (one value per row)."""
        n = len(g)
        grad_w0 = float(g.sum()) / n
        grad_w = np.asarray(x.T @ g).ravel() / n
        grad_v = (np.asarray(x.T @ (g[:, None] * xv)) - np.asarray(x2.T @ g).reshape(-1, 1) * self.v) / n
        return grad_w0, grad_w, grad_v

    def scores(self, x: Any) -> np.ndarray:
        y, _, _ = self.forward(x)
        return sigmoid(y) if self.predictor_type == BINARY else y

    def records(self, x: Any) -> list[dict[str, Any]]:
        scores = self.scores(x)
        if self.predictor_type == REGRESSOR:
            return [{"score": s} for s in scores.tolist()]
        return [{"score": s, "predicted_label": int(s >= 0.5)} for s in scores.tolist()]

    def save(self, model_dir: Path) -> None:
        arrays = {"w0": np.float64(self.w0), "w": self.w.astype(np.float64), "v": self.v.astype(np.float64)}
        write_artifact(model_dir, FORMAT, arrays, {"predictor_type": self.predictor_type,
                                                   "feature_dim": self.feature_dim,
                                                   "num_factors": int(self.v.shape[1]), **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> FMModel:
        meta, arrays = read_artifact(model_dir, FORMAT, "Factorization Machines")
        w0, w, v = float(arrays["w0"]), arrays["w"], arrays["v"]
        info = {k: val for k, val in meta.items()
                if k not in ("predictor_type", "feature_dim", "num_factors")}
        return cls(meta["predictor_type"], w0, w, v, info)


