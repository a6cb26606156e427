"""Random Cut Forest's predictor: the forest's anomaly score of each record.

Serving: text/csv, application/json (dense or sparse), application/jsonlines and recordIO-protobuf in; JSON
`{"scores": [{"score": 0.02}, ...]}`, JSON Lines `{"score": ...}` and protobuf (label `score`) out.
"""

from __future__ import annotations

import numpy as np

from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.random_cut_forest.model import Forest


class RCFPredictor:
    content_types = onep_io.CONTENT_TYPES
    accept_types = onep_io.ACCEPT_TYPES
    default_accept = onep_io.JSON

    def __init__(self, forest: Forest):
        self.forest = forest

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        out_type = onep_io.negotiate_accept(accept, self.accept_types, self.default_accept)
        x = onep_io.parse_request(body, content_type, feature_dim=self.forest.feature_dim, dense=True)
        rows = [{"score": s} for s in self.forest.scores(np.asarray(x, dtype=np.float64)).tolist()]
        return onep_io.encode_response(rows, out_type, json_key="scores", accept_types=self.accept_types,
                                       default_accept=self.default_accept)
