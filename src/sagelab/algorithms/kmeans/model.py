"""K-Means' model and its artifact.

The artifact is `model.npz` (the k x feature_dim centroid matrix, float32, read with allow_pickle=False) and
`model.json` (format and training hyperparameters). AWS stores the same matrix as an MXNet ndarray file; an
MXNet reader is not available here, so the format is sagelab's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NPZ = "model.npz"
MODEL_JSON = "model.json"
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
        model_dir.mkdir(parents=True, exist_ok=True)
        np.savez(model_dir / MODEL_NPZ, centroids=self.centroids)
        meta = {"format": FORMAT, "k": self.k, "feature_dim": self.feature_dim, **self.info}
        (model_dir / MODEL_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, model_dir: Path) -> KMeansModel:
        meta_path, npz_path = model_dir / MODEL_JSON, model_dir / MODEL_NPZ
        if not meta_path.is_file() or not npz_path.is_file():
            raise FileNotFoundError(f"{model_dir} holds no K-Means model ({MODEL_JSON} and {MODEL_NPZ}).")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a {FORMAT} model (format {meta.get('format')!r}).")
        with np.load(npz_path, allow_pickle=False) as arrays:
            centroids = arrays["centroids"]
        if centroids.ndim != 2 or centroids.shape[0] != meta.get("k"):
            raise ValueError(f"{npz_path}: expected {meta.get('k')} centroids, found an array of shape "
                             f"{centroids.shape}.")
        return cls(centroids, {k: v for k, v in meta.items() if k not in ("format", "k", "feature_dim")})


