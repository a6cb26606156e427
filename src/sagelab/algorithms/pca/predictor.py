"""PCA's predictor: each record's projection onto the principal components.

A record's projection is (x - mean) @ v, in the artifact's ascending order:
    JSON        {"projections": [{"projection": [...]}]}
    JSON Lines  {"projection": [...]}
    protobuf    label {"projection": [...]}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab.algorithms.first_party.predictor import JSON, JSONLINES, PROTOBUF, OnePPredictor
from sagelab.algorithms.pca.model import PCAModel


class PCAPredictor(OnePPredictor):
    accept_types = (JSON, JSONLINES, PROTOBUF)
    json_key = "projections"

    def __init__(self, model: PCAModel):
        self.model = model
        self.feature_dim = model.feature_dim

    def predict_rows(self, x: np.ndarray, accept_params: dict[str, str]) -> list[dict[str, Any]]:
        return [{"projection": row} for row in self.model.project(x).tolist()]
