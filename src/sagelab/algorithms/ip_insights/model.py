"""IP Insights' model: entity and IP address embeddings whose dot product says how usual a pairing is.

Entities are hashed (BLAKE2b, stable across processes) into `num_entity_vectors` rows of an embedding table.
An IP address becomes its 16 bytes (IPv4 as an IPv4-mapped IPv6 address); the IP encoder sums one learned
vector per (byte position, byte value) and applies `num_ip_encoder_layers` dense layers (ReLU between them, none
after the last, so embeddings can point anywhere). AWS does not document its encoder's internals; this one keeps
addresses of one subnet close, which is what the algorithm relies on.

The artifact is `model.npz` (entity table, byte table, layer weights; read with allow_pickle=False) beside
`model.json`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.first_party.artifact import read_artifact, write_artifact

FORMAT = "sagelab-ip-insights/1"
IP_BYTES = 16


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
        layers = len(self.weights)
        d = self.entity.shape[1]
        arrays = {"entity": self.entity, "byte_table": self.byte_table,
                  "weights": np.array(self.weights).reshape(layers, d, d),
                  "biases": np.array(self.biases).reshape(layers, d)}
        write_artifact(model_dir, FORMAT, arrays, {
            "num_entity_vectors": self.buckets, "vector_dim": int(d), "num_ip_encoder_layers": layers,
            "entity_hash": "blake2b-64 mod num_entity_vectors", **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> IPInsightsModel:
        meta, a = read_artifact(model_dir, FORMAT, "IP Insights")
        entity, byte_table, weights, biases = a["entity"], a["byte_table"], a["weights"], a["biases"]
        info = {k: v for k, v in meta.items() if k not in ("num_entity_vectors", "vector_dim",
                                                            "num_ip_encoder_layers", "entity_hash")}
        return cls(entity, byte_table, list(weights), list(biases), info)
