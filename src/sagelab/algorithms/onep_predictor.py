"""The serving side that SageMaker's first-party (1P) algorithms share.

A request (CSV without label, JSON `instances`, JSON Lines or recordIO-protobuf) becomes a float32 matrix; the
model turns it into one dict per record with the algorithm's documented keys; the response is JSON
(`{"predictions": [...]}`, or the algorithm's own key such as PCA's `projections`), JSON Lines, protobuf (one
Record per input with the values in its `label` map, as the SDK's RecordDeserializer reads them) or, for the
algorithms that document it, CSV. Parameters of the Accept header (k-NN's `verbose=true`) reach the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagelab.algorithms.base import InferenceError, split_content_type

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
PROTOBUF = "application/x-recordio-protobuf"
_JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/json-lines")


class OnePPredictor:
    """Subclasses set `feature_dim`, `accept_types` (and `json_key`) and implement `predict_rows`."""

    accept_types: tuple[str, ...] = (JSON, JSONLINES, PROTOBUF)
    default_accept: str = JSON
    json_key: str = "predictions"
    feature_dim: int

    @property
    def content_types(self) -> tuple[str, ...]:
        from sagelab.algorithms import onep_io

        return tuple(onep_io.CONTENT_TYPES)

    def predict_rows(self, x: np.ndarray, accept_params: dict[str, str]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        from sagelab.algorithms import onep_io

        out_type, params = self.negotiate(accept)
        x = onep_io.parse_request(body, content_type, feature_dim=self.feature_dim)
        if hasattr(x, "toarray"):
            x = x.toarray()
        x = np.asarray(x, dtype=np.float32)
        rows = self.predict_rows(x, params)
        payload, returned = onep_io.encode_response(rows, out_type, json_key=self.json_key)
        return payload, returned

    def negotiate(self, accept: str | None) -> tuple[str, dict[str, str]]:
        """The response type for an Accept header (first supported option wins; none or */* = the default)."""
        if not accept or not accept.strip():
            return self.default_accept, {}
        for option in accept.split(","):
            kind, params = split_content_type(option)
            if kind in ("*/*", "application/*"):
                return self.default_accept, params
            if kind in _JSONLINES_ALIASES:
                kind = JSONLINES
            if kind in self.accept_types:
                return kind, params
        raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")


def is_true(params: dict[str, str], name: str) -> bool:
    return params.get(name, "").strip().strip('"').lower() in ("true", "1", "yes")
