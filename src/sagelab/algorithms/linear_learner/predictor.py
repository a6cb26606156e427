"""Linear Learner's predictor: a `LinearModel` answering invocations.

Requests and responses follow the shared first-party contract (`first_party.io`): text/csv (no label),
application/json (dense or sparse instances), application/jsonlines, application/x-recordio-protobuf in;
application/json, application/jsonlines, application/x-recordio-protobuf (results in the label map) and
text/csv out. The result keys follow LL-in-formats exactly:
    binary      {"score": 0.4, "predicted_label": 0}     score = probability for the logistic loss
    multiclass  {"score": [0.1, 0.2, 0.7], "predicted_label": 2}
    regression  {"score": 0.4}
wrapped in `{"predictions": [...]}` for JSON, one object per line for JSON Lines, one Record per row with
`label["score"]` / `label["predicted_label"]` float32 tensors for protobuf.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.linear_learner.model import LinearModel

CONTENT_TYPES = onep_io.CONTENT_TYPES
ACCEPT_TYPES = (*onep_io.ACCEPT_TYPES, onep_io.CSV)
DEFAULT_ACCEPT = onep_io.JSON


class LinearLearnerPredictor:
    """Answers invocations for one `LinearModel` in SageMaker's Linear Learner formats."""

    content_types = CONTENT_TYPES
    accept_types = ACCEPT_TYPES
    default_accept = DEFAULT_ACCEPT

    def __init__(self, model: LinearModel):
        self.model = model

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        out_type = onep_io.negotiate_accept(accept, ACCEPT_TYPES, DEFAULT_ACCEPT)
        # Dense: a request is small, and sparse and dense requests then score bit-for-bit alike.
        x = onep_io.parse_request(body, content_type, feature_dim=self.model.feature_dim, dense=True)
        scores, labels = self.model.predict(x)
        return encode(self.model.predictor_type, scores, labels, out_type), out_type


# -- response encoding ------------------------------------------------------------------------------------


def records(predictor_type: str, scores: np.ndarray, labels: np.ndarray | None) -> list[dict[str, Any]]:
    if predictor_type == "regressor":
        return [{"score": value} for value in scores.tolist()]
    return [{"score": score, "predicted_label": label}
            for score, label in zip(scores.tolist(), labels.tolist(), strict=True)]


def _csv_row(row: dict[str, Any]) -> list[Any]:
    # Linear Learner's CSV response is not documented (reference 5.1: uncertain). We answer one line per
    # record: "predicted_label,score" (binary), "predicted_label,score_0,...,score_k-1" (multiclass) and
    # "score" (regression).
    if "predicted_label" not in row:
        return [row["score"]]
    score = row["score"]
    return [row["predicted_label"], *(score if isinstance(score, list) else [score])]


def encode(predictor_type: str, scores: np.ndarray, labels: np.ndarray | None, accept: str) -> bytes:
    body, _ = onep_io.encode_response(records(predictor_type, scores, labels), accept, accept_types=ACCEPT_TYPES,
                                      default_accept=DEFAULT_ACCEPT, csv_row=_csv_row)
    return body
