"""NTM's predictor: each document's topic weights (softmax of the encoder's mean: they sum to 1).

    JSON        {"predictions": [{"topic_weights": [0.1, 0.9]}]}
    JSON Lines  {"topic_weights": [0.1, 0.9]}
    protobuf    label {"topic_weights": [0.1, 0.9]}
Requests are CSV (counts only, no label), JSON, JSON Lines or protobuf, dense or sparse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.first_party.bag_of_words import parse_documents
from sagelab.algorithms.first_party.predictor import JSON, JSONLINES, PROTOBUF
from sagelab.algorithms.ntm import network
from sagelab.algorithms.torch_threads import torch_threads

#: request cells (documents x words) from which inference uses every core
PARALLEL_CELLS = 20_000_000


class NTMPredictor:
    content_types = onep_io.CONTENT_TYPES
    accept_types = (JSON, JSONLINES, PROTOBUF)
    default_accept = JSON

    def __init__(self, model_dir: Path):
        self.network, settings = network.load(model_dir)
        self.feature_dim = int(settings["feature_dim"])

    def topic_weights(self, counts: np.ndarray) -> np.ndarray:
        with torch_threads(counts.size >= PARALLEL_CELLS), torch.no_grad():
            return self.network.topic_weights(torch.as_tensor(counts, dtype=torch.float32)).numpy()

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        onep_io.negotiate_accept(accept, self.accept_types, self.default_accept)
        x = parse_documents(body, content_type, self.feature_dim).toarray()
        rows = [{"topic_weights": row} for row in self.topic_weights(x).tolist()]
        return onep_io.encode_response(rows, accept, accept_types=self.accept_types,
                                       default_accept=self.default_accept)
