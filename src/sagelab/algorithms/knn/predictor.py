"""k-NN's predictor: the label of each record's k nearest stored records.

Each record gets `predicted_label`; with `verbose=true` in the Accept header (`application/json; verbose=true`,
`application/x-recordio-protobuf; verbose=true`, ...) also `distances` (nearest first) and the neighbours'
`labels` in the same order:
    JSON        {"predictions": [{"predicted_label": 0.0}]}
    verbose     {"predictions": [{"predicted_label": 0.0, "distances": [3.1, 3.9], "labels": [0.0, 1.0]}]}
    JSON Lines  one such object per line
    protobuf    label {"predicted_label": [0.0]} (+ "distances", "labels" when verbose)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab.algorithms.first_party.predictor import JSON, JSONLINES, PROTOBUF, OnePPredictor, is_true
from sagelab.algorithms.knn.model import KNNModel


class KNNPredictor(OnePPredictor):
    accept_types = (JSON, JSONLINES, PROTOBUF)

    def __init__(self, model: KNNModel):
        self.model = model
        self.feature_dim = model.feature_dim
        if model.index_metric == "L2":
            model.l2_index()  # built once when the model loads, not on the first request

    def predict_rows(self, x: np.ndarray, accept_params: dict[str, str]) -> list[dict[str, Any]]:
        predicted, scores, labels = self.model.predict(x)
        if not is_true(accept_params, "verbose"):
            return [{"predicted_label": value} for value in predicted.tolist()]
        return [{"predicted_label": value, "distances": distances, "labels": neighbours}
                for value, distances, neighbours in zip(predicted.tolist(), scores.tolist(), labels.tolist(),
                                                        strict=True)]
