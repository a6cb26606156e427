"""The serving side that SageMaker's first-party (1P) algorithms K-Means, PCA and k-NN share.

A request (CSV without label, JSON `instances`, JSON Lines or recordIO-protobuf) becomes a dense float32 matrix;
the model turns it into one dict per record with the algorithm's documented keys; the response is JSON
(`{"predictions": [...]}`, or the algorithm's own key such as PCA's `projections`), JSON Lines, protobuf (one
Record per input with the values in its `label` map, as the SDK's RecordDeserializer reads them) or, for the
algorithms that document it, CSV. Decoding and encoding are `first_party.io`'s; parameters of the Accept
header (k-NN's `verbose=true`) reach the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab.algorithms.base import split_content_type
from sagelab.algorithms.first_party import io as onep_io

JSON = onep_io.JSON
JSONLINES = onep_io.JSONLINES
CSV = onep_io.CSV
PROTOBUF = onep_io.PROTOBUF


class OnePPredictor:
    """Subclasses set `feature_dim`, `accept_types` (and `json_key`) and implement `predict_rows`."""

    content_types: tuple[str, ...] = onep_io.CONTENT_TYPES
    accept_types: tuple[str, ...] = onep_io.ACCEPT_TYPES
    default_accept: str = JSON
    json_key: str = "predictions"
    feature_dim: int

    def predict_rows(self, x: np.ndarray, accept_params: dict[str, str]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        out_type = onep_io.negotiate_accept(accept, self.accept_types, self.default_accept)
        x = onep_io.parse_request(body, content_type, feature_dim=self.feature_dim, dense=True)
        rows = self.predict_rows(np.asarray(x, dtype=np.float32), accept_parameters(accept, out_type))
        return onep_io.encode_response(rows, out_type, json_key=self.json_key, accept_types=self.accept_types,
                                       default_accept=self.default_accept)


def accept_parameters(accept: str | None, chosen: str) -> dict[str, str]:
    """The parameters of the Accept option that selected `chosen` (`application/json; verbose=true`)."""
    for option in (accept or "").split(","):
        kind, params = split_content_type(option)
        if kind in onep_io.JSONLINES_ALIASES:
            kind = JSONLINES
        if kind == chosen or kind in ("*/*", "application/*"):
            return params
    return {}


def is_true(params: dict[str, str], name: str) -> bool:
    return params.get(name, "").strip().strip('"').lower() in ("true", "1", "yes")
