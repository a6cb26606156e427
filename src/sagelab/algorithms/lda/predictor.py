"""LDA's predictor: each document's topic mixture.

    JSON        {"predictions": [{"topic_mixture": [0.1, 0.9]}]}
    JSON Lines  {"topic_mixture": [0.1, 0.9]}
    protobuf    label {"topic_mixture": [0.1, 0.9]}
Requests are CSV (counts only, no label), JSON, JSON Lines or protobuf, dense or sparse.
"""

from __future__ import annotations

from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.first_party.bag_of_words import parse_documents
from sagelab.algorithms.first_party.predictor import JSON, JSONLINES, PROTOBUF
from sagelab.algorithms.lda.model import LDAModel


class LDAPredictor:
    content_types = onep_io.CONTENT_TYPES
    accept_types = (JSON, JSONLINES, PROTOBUF)
    default_accept = JSON

    def __init__(self, model: LDAModel):
        self.model = model

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        onep_io.negotiate_accept(accept, self.accept_types, self.default_accept)
        x = parse_documents(body, content_type, self.model.feature_dim)
        rows = [{"topic_mixture": row} for row in self.model.topic_mixture(x).tolist()]
        return onep_io.encode_response(rows, accept, accept_types=self.accept_types,
                                       default_accept=self.default_accept)
