"""PCA's model and its artifact.

The artifact mirrors AWS's (a dict with `mean` only when subtract_mean, `v` and `s`, ordered from the smallest
singular value to the largest) as `model.npz` (NumPy arrays, read with allow_pickle=False) beside `model.json`.
`v` is feature_dim x num_components: column j is the component with singular value `s[j]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.first_party.artifact import MODEL_NPZ, read_artifact, write_artifact

FORMAT = "sagelab-pca/1"


class PCAModel:
    def __init__(self, v: np.ndarray, s: np.ndarray, mean: np.ndarray | None, info: dict[str, Any] | None = None):
        self.v = np.ascontiguousarray(v, dtype=np.float32)
        self.s = np.asarray(s, dtype=np.float32)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.info = info or {}

    @property
    def feature_dim(self) -> int:
        return int(self.v.shape[0])

    @property
    def num_components(self) -> int:
        return int(self.v.shape[1])

    def project(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.mean is not None:
            x = x - self.mean
        return x @ self.v

    def save(self, model_dir: Path) -> None:
        arrays = {"v": self.v, "s": self.s}
        if self.mean is not None:
            arrays["mean"] = self.mean
        write_artifact(model_dir, FORMAT, arrays, {
            "feature_dim": self.feature_dim, "num_components": self.num_components,
            "subtract_mean": self.mean is not None, "component_order": "ascending singular value",
            **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> PCAModel:
        meta, arrays = read_artifact(model_dir, FORMAT, "PCA")
        v, s, mean = arrays["v"], arrays["s"], arrays.get("mean")
        if v.ndim != 2 or s.shape != (v.shape[1],) or (mean is not None and mean.shape != (v.shape[0],)):
            raise ValueError(f"{model_dir / MODEL_NPZ}: inconsistent shapes v {v.shape}, s {s.shape}"
                             + ("" if mean is None else f", mean {mean.shape}") + ".")
        skip = ("feature_dim", "num_components", "subtract_mean", "component_order")
        return cls(v, s, mean, {k: val for k, val in meta.items() if k not in skip})


