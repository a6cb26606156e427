"""IP Insights' predictor: how usual each entity and IP address pairing is.

Serving (DG `ip-insights-inference-data-formats`): text/csv (`entity,ip` per line), application/json
(`{"instances": [{"features": ["e1", "1.2.3.4"]}]}` or the `data.features.values` form) and
application/jsonlines in; JSON `{"predictions": [{"dot_product": 2.0}]}` or JSON Lines out, no protobuf.
`Accept: application/json; verbose=True` adds `entity_embedding` and `ip_embedding` to each prediction.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from sagelab.algorithms.base import InferenceError, split_content_type
from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.ip_insights.model import IPInsightsModel, entity_rows, ip_bytes

CONTENT_TYPES = (onep_io.CSV, onep_io.JSON, onep_io.JSONLINES)
ACCEPT_TYPES = (onep_io.JSON, onep_io.JSONLINES)


class IPInsightsPredictor:
    content_types = CONTENT_TYPES
    accept_types = ACCEPT_TYPES
    default_accept = onep_io.JSON

    def __init__(self, model: IPInsightsModel):
        self.model = model

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        out_type = onep_io.negotiate_accept(accept, self.accept_types, self.default_accept)
        verbose = any(_is_true(split_content_type(option)[1].get("verbose", "")) for option in (accept or "").split(","))
        pairs = parse_pairs(body, content_type)
        entities, ips = _encode(pairs)
        rows = entity_rows(entities, self.model.buckets)
        ip_vectors, _ = self.model.encode_ips(ips)
        entity_vectors = self.model.entity[rows]
        dots = np.einsum("ij,ij->i", entity_vectors, ip_vectors)
        results: list[dict[str, Any]] = []
        for i, dot in enumerate(dots.tolist()):
            result: dict[str, Any] = {"dot_product": dot}
            if verbose:
                result["entity_embedding"] = entity_vectors[i].tolist()
                result["ip_embedding"] = ip_vectors[i].tolist()
            results.append(result)
        return onep_io.encode_response(results, out_type, accept_types=self.accept_types,
                                       default_accept=self.default_accept)


def _is_true(value: str) -> bool:
    return value.strip().strip('"').lower() in ("true", "1", "yes")


def parse_pairs(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    kind, _ = split_content_type(content_type)
    if kind in onep_io.JSONLINES_ALIASES:
        kind = onep_io.JSONLINES
    if kind not in CONTENT_TYPES:
        raise InferenceError(415, f"Content type {content_type!r} is not supported by IP Insights. Supported: "
                                  f"{', '.join(CONTENT_TYPES)}.")
    if not body or not bytes(body).strip():
        raise InferenceError(400, "The request body is empty: send at least one entity,IP address pair.")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None
    if kind == onep_io.CSV:
        pairs = []
        for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not fields or not "".join(fields).strip():
                continue
            pairs.append(_pair(fields, f"CSV record {number}"))
        return pairs
    if kind == onep_io.JSON:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InferenceError(400, f"The request body is not valid JSON: {exc}.") from None
        instances = document.get("instances") if isinstance(document, dict) else None
        if not isinstance(instances, list) or not instances:
            raise InferenceError(400, 'Expected {"instances": [{"features": ["entity", "1.2.3.4"]}, ...]} with at '
                                      "least one instance.")
        return [_pair(_values(item, f"Instance {i}"), f"Instance {i}") for i, item in enumerate(instances, start=1)]
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InferenceError(400, f"JSON Lines line {number} is not valid JSON: {exc}.") from None
        pairs.append(_pair(_values(item, f"JSON Lines record {number}"), f"JSON Lines record {number}"))
    return pairs


def _values(item: Any, where: str) -> Any:
    if isinstance(item, dict) and "features" in item:
        return item["features"]
    if isinstance(item, dict) and isinstance(item.get("data"), dict):
        features = item["data"].get("features")
        if isinstance(features, dict) and "values" in features:
            return features["values"]
    raise InferenceError(400, f'{where}: expected {{"features": ["entity", "ip"]}} or '
                              '{"data": {"features": {"values": ["entity", "ip"]}}}.')


def _pair(values: Any, where: str) -> tuple[str, str]:
    if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, str) for v in values):
        raise InferenceError(400, f"{where}: expected two strings, an entity and an IP address, got {values!r}.")
    entity, address = values[0].strip(), values[1].strip()
    if ip_bytes(address) is None:
        raise InferenceError(400, f"{where}: {address!r} is not an IPv4 or IPv6 address.")
    return entity, address


def _encode(pairs: list[tuple[str, str]]) -> tuple[list[str], np.ndarray]:
    entities = [entity for entity, _ in pairs]
    ips = np.vstack([ip_bytes(address) for _, address in pairs])
    return entities, ips
