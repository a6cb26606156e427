"""K-Means' model and its artifact.

The artifact is `model.npz` (the k x feature_dim centroid matrix, float32, read with allow_pickle=False) and
`model.json` (format and training hyperparameters). AWS stores the same matrix as an MXNet ndarray file; an
MXNet reader is not available here, so the format is sagelab's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.first_party.artifact import MODEL_NPZ, read_artifact, write_artifact

FORMAT = "sagelab-kmeans/1"


class KMeansModel:
    def __init__(self, centroids: np.ndarray, info: dict[str, Any] | None = None):
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.info = info or {}

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.centroids.shape[1])

    def assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(closest centroid index, Euclidean distance to it) per record, both float32 as AWS answers."""
        from sklearn.metrics import pairwise_distances_argmin_min

        index, distance = pairwise_distances_argmin_min(np.asarray(x, dtype=np.float32), self.centroids)
        return index.astype(np.float32), distance.astype(np.float32)

    def save(self, model_dir: Path) -> None:
        write_artifact(model_dir, FORMAT, {"centroids": self.centroids},
                       {"k": self.k, "feature_dim": self.feature_dim, **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> KMeansModel:
        meta, arrays = read_artifact(model_dir, FORMAT, "K-Means")
        centroids = arrays["centroids"]
        if centroids.ndim != 2 or centroids.shape[0] != meta.get("k"):
            raise ValueError(f"{model_dir / MODEL_NPZ}: expected {meta.get('k')} centroids, found an array of "
                             f"shape {centroids.shape}.")
        return cls(centroids, {k: v for k, v in meta.items() if k not in ("k", "feature_dim")})


