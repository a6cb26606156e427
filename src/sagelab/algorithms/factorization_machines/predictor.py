"""Factorization Machines' predictor.

Serving (FM's documented formats, no CSV): application/json, application/jsonlines and
application/x-recordio-protobuf in; JSON `{"predictions": [{"score": 0.4, "predicted_label": 0}]}`, JSON Lines
and protobuf (label map `score`, `predicted_label`) out.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.factorization_machines.model import FMModel
from sagelab.algorithms.first_party import io as onep_io

CONTENT_TYPES = (onep_io.JSON, onep_io.JSONLINES, onep_io.PROTOBUF)
ACCEPT_TYPES = onep_io.ACCEPT_TYPES


class FMPredictor:
    content_types = CONTENT_TYPES
    accept_types = ACCEPT_TYPES
    default_accept = onep_io.JSON

    def __init__(self, model: FMModel):
        self.model = model

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        out_type = onep_io.negotiate_accept(accept, self.accept_types, self.default_accept)
        x = onep_io.parse_request(body, content_type, feature_dim=self.model.feature_dim,
                                  content_types=self.content_types)
        x = x.astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        return onep_io.encode_response(self.model.records(x), out_type, accept_types=self.accept_types,
                                       default_accept=self.default_accept)
