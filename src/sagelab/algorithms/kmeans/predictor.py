"""K-Means' predictor: each record's closest centroid.

Each record gets `closest_cluster` (the centroid's index, as a float like AWS) and `distance_to_cluster` (the
Euclidean distance to it):
    JSON        {"predictions": [{"closest_cluster": 1.0, "distance_to_cluster": 3.0}]}
    JSON Lines  {"closest_cluster": 1.0, "distance_to_cluster": 3.0}
    CSV         1.0,3.0
    protobuf    label {"closest_cluster": [1.0], "distance_to_cluster": [3.0]}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab.algorithms.first_party.predictor import CSV, JSON, JSONLINES, PROTOBUF, OnePPredictor
from sagelab.algorithms.kmeans.model import KMeansModel


class KMeansPredictor(OnePPredictor):
    accept_types = (JSON, JSONLINES, CSV, PROTOBUF)

    def __init__(self, model: KMeansModel):
        self.model = model
        self.feature_dim = model.feature_dim

    def predict_rows(self, x: np.ndarray, accept_params: dict[str, str]) -> list[dict[str, Any]]:
        index, distance = self.model.assign(x)
        return [{"closest_cluster": c, "distance_to_cluster": d}
                for c, d in zip(index.tolist(), distance.tolist(), strict=True)]
