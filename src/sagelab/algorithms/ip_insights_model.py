"""IP Insights' model: entity and IP address embeddings whose dot product says how usual a pairing is.

Entities are hashed (BLAKE2b, stable across processes) into `num_entity_vectors` rows of an embedding table.
An IP address becomes its 16 bytes (IPv4 as an IPv4-mapped IPv6 address); the IP encoder sums one learned
vector per (byte position, byte value) and applies `num_ip_encoder_layers` dense layers (ReLU between them, none
after the last, so embeddings can point anywhere). AWS does not document its encoder's internals; this one keeps
addresses of one subnet close, which is what the algorithm relies on.

The artifact is `model.npz` (entity table, byte table, layer weights; read with allow_pickle=False) beside
`model.json`.

Serving (DG `ip-insights-inference-data-formats`): text/csv (`entity,ip` per line), application/json
(`{"instances": [{"features": ["e1", "1.2.3.4"]}]}` or the `data.features.values` form) and
application/jsonlines in; JSON `{"predictions": [{"dot_product": 2.0}]}` or JSON Lines out, no protobuf.
`Accept: application/json; verbose=True` adds `entity_embedding` and `ip_embedding` to each prediction.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import InferenceError, split_content_type
from sagelab.algorithms.first_party import io as onep_io

MODEL_NPZ = "model.npz"
MODEL_JSON = "model.json"
FORMAT = "sagelab-ip-insights/1"
IP_BYTES = 16

CONTENT_TYPES = (onep_io.CSV, onep_io.JSON, onep_io.JSONLINES)
ACCEPT_TYPES = (onep_io.JSON, onep_io.JSONLINES)


def entity_rows(entities: Iterable[str], buckets: int) -> np.ndarray:
    """Each entity's row in the embedding table (the hashing trick; the same in every process)."""
    names = list(entities)
    unique, inverse = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    rows = np.array([int.from_bytes(hashlib.blake2b(str(u).encode("utf-8"), digest_size=8).digest(), "little")
                     % buckets for u in unique], dtype=np.int64)
    return rows[inverse.ravel()] if len(names) else np.empty(0, dtype=np.int64)


def ip_bytes(address: str) -> np.ndarray | None:
    """The 16 bytes of an IPv4 (mapped into IPv6) or IPv6 address; None when `address` is neither."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if ip.version == 4:
        ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    return np.frombuffer(ip.packed, dtype=np.uint8)


@dataclasses.dataclass
class IPInsightsModel:
    entity: np.ndarray  # (num_entity_vectors, vector_dim)
    byte_table: np.ndarray  # (16, 256, vector_dim)
    weights: list[np.ndarray]  # num_ip_encoder_layers x (vector_dim, vector_dim)
    biases: list[np.ndarray]  # num_ip_encoder_layers x (vector_dim,)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def buckets(self) -> int:
        return int(self.entity.shape[0])

    def encode_ips(self, ips: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """IP embeddings (n, d) for (n, 16) bytes, and each layer's input (for the gradient)."""
        h = np.zeros((len(ips), self.byte_table.shape[2]))
        for position in range(IP_BYTES):
            h += self.byte_table[position][ips[:, position]]
        inputs = []
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            a = np.maximum(h, 0.0) if layer else h
            inputs.append(a)
            h = a @ w + b
        return h, inputs

    def dot_products(self, rows: np.ndarray, ips: np.ndarray) -> np.ndarray:
        ip_vectors, _ = self.encode_ips(ips)
        return np.einsum("ij,ij->i", self.entity[rows], ip_vectors)

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        layers = len(self.weights)
        d = self.entity.shape[1]
        np.savez(model_dir / MODEL_NPZ, entity=self.entity, byte_table=self.byte_table,
                 weights=np.array(self.weights).reshape(layers, d, d), biases=np.array(self.biases).reshape(layers, d))
        meta = {"format": FORMAT, "num_entity_vectors": self.buckets, "vector_dim": int(d),
                "num_ip_encoder_layers": layers, "entity_hash": "blake2b-64 mod num_entity_vectors", **self.info}
        (model_dir / MODEL_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, model_dir: Path) -> IPInsightsModel:
        meta_path, npz_path = model_dir / MODEL_JSON, model_dir / MODEL_NPZ
        if not meta_path.is_file() or not npz_path.is_file():
            raise FileNotFoundError(f"{model_dir} holds no IP Insights model ({MODEL_JSON} and {MODEL_NPZ}).")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a {FORMAT} model (format {meta.get('format')!r}).")
        with np.load(npz_path, allow_pickle=False) as a:
            entity, byte_table, weights, biases = a["entity"], a["byte_table"], a["weights"], a["biases"]
        info = {k: v for k, v in meta.items() if k not in ("format", "num_entity_vectors", "vector_dim",
                                                            "num_ip_encoder_layers", "entity_hash")}
        return cls(entity, byte_table, list(weights), list(biases), info)


# -- serving ------------------------------------------------------------------------------------------------


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
