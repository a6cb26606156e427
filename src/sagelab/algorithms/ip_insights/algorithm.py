"""SageMaker's IP Insights (`ipinsights` images): learns which IP addresses an entity (user, account) usually
comes from, as entity and IP embeddings trained to tell real pairs from negative samples (NumPy; see
`ip_insights.model` for the model and `ip_insights.predictor` for its serving formats).

Channels (DG `ip-insights`): `train` (required) and `validation` (optional), CSV only (`entity_id,1.2.3.4`, no
header; IPv4 or IPv6), File mode. Each mini-batch of real pairs gets `random_negative_sampling_rate` pairs with a
random IP address (same family as the real one) and `shuffled_negative_sampling_rate` pairs with an IP address
of another pair of the batch, all labelled 0. The loss is the binary cross-entropy of sigmoid(entity . ip),
minimised with Adam (`learning_rate`; `weight_decay` as an L2 term; entity rows updated lazily, only where a batch
touches them). Random draws use a fixed seed, so training is deterministic.

Log: every `batch_metrics_publish_interval` batches and after each epoch, the training loss and accuracy as
`#quality_metric: host=algo-1, epoch=N, ...` lines; with a validation channel, the discriminator's ROC AUC on the
validation pairs against one set of negatives drawn like the training ones, each epoch and finally as
`#quality_metric: host=algo-1, validation discriminator_auc <score>=0.93` (`validation:discriminator_auc`).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms import quality_metrics as qm
from sagelab.algorithms.base import Channel, ChannelSpec, DataError, TrainingContext, split_content_type
from sagelab.algorithms.ip_insights.hyperparameters import SCHEMA
from sagelab.algorithms.ip_insights.model import IPInsightsModel, entity_rows, ip_bytes
from sagelab.algorithms.ip_insights.predictor import IPInsightsPredictor

SEED = 20181116
#: Entity table cells sagelab will train on one machine (each needs 24 bytes with Adam's moments).
MAX_ENTITY_CELLS = 50_000_000
_MAPPED_V4 = np.array([0] * 10 + [255, 255], dtype=np.uint8)
_BETAS = (0.9, 0.999)
_EPS = 1e-8


def _metric_definitions() -> tuple:
    return qm.progress_definitions() + (
        qm.definition("validation", "discriminator_auc", "discriminator_auc", "score", "Maximize"),)


# ---------------------------------------------------------------------------------------------- data


def read_pairs(channel: Channel) -> tuple[list[str], np.ndarray]:
    """(entities, (n, 16) IP bytes) of a CSV channel of `entity,ip` lines."""
    from sagelab.algorithms.data import data_files

    kind, _ = split_content_type(channel.content_type or "text/csv")
    if kind != "text/csv":
        raise DataError(f"Channel '{channel.name}': content type {channel.content_type!r} is not supported; IP "
                        "Insights reads text/csv (entity_id,ip_address lines without a header).")
    files = data_files(channel.files)
    if not files:
        raise DataError(f"Channel '{channel.name}' has no data: no non-empty files were found under its S3 location.")
    entities: list[str] = []
    ips: list[np.ndarray] = []
    cache: dict[str, np.ndarray | None] = {}
    for path in files:
        name = path.name.partition("-")[2] if path.name.split("-", 1)[0].isdigit() else path.name
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) != 2:
                raise DataError(f"Channel '{channel.name}', file {name}, line {number}: expected entity_id,ip_address "
                                f"(2 columns), got {len(fields)} column(s).")
            address = fields[1].strip()
            encoded = cache.get(address)
            if encoded is None:
                encoded = cache[address] = ip_bytes(address)
            if encoded is None:
                raise DataError(f"Channel '{channel.name}', file {name}, line {number}: {address!r} is not an IPv4 or "
                                "IPv6 address.")
            entities.append(fields[0].strip())
            ips.append(encoded)
    if not entities:
        raise DataError(f"Channel '{channel.name}' holds no entity,IP address lines.")
    return entities, np.vstack(ips)


def negatives(rows: np.ndarray, ips: np.ndarray, random_rate: int, shuffled_rate: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Negative pairs for a batch: random addresses of the real one's family, and other pairs' addresses."""
    neg_rows, neg_ips = [], []
    v4 = np.all(ips[:, :12] == _MAPPED_V4, axis=1)
    for _ in range(random_rate):
        fake = rng.integers(0, 256, size=ips.shape, dtype=np.uint8)
        fake[v4, :12] = _MAPPED_V4
        neg_rows.append(rows)
        neg_ips.append(fake)
    for _ in range(shuffled_rate):
        neg_rows.append(rows)
        neg_ips.append(ips[rng.permutation(len(ips))])
    if not neg_rows:
        return np.empty(0, dtype=np.int64), np.empty((0, ips.shape[1]), dtype=np.uint8)
    return np.concatenate(neg_rows), np.vstack(neg_ips)


# ---------------------------------------------------------------------------------------------- training


class _Adam:
    """Adam for one array; `rows` updates only those rows (lazy, for the entity table)."""

    def __init__(self, shape: tuple[int, ...]):
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.steps = np.zeros(shape[0], dtype=np.int64)

    def step(self, param: np.ndarray, grad: np.ndarray, lr: float, wd: float, rows: np.ndarray | None = None) -> None:
        index: Any = slice(None) if rows is None else rows
        grad = grad + wd * param[index]
        self.steps[index] += 1
        t = self.steps[index].reshape((-1,) + (1,) * (param.ndim - 1))
        m = self.m[index] * _BETAS[0] + (1 - _BETAS[0]) * grad
        v = self.v[index] * _BETAS[1] + (1 - _BETAS[1]) * grad * grad
        self.m[index], self.v[index] = m, v
        param[index] -= lr * (m / (1 - _BETAS[0] ** t)) / (np.sqrt(v / (1 - _BETAS[1] ** t)) + _EPS)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _train_step(model: IPInsightsModel, optimizers: dict[str, Any], rows: np.ndarray, ips: np.ndarray,
                labels: np.ndarray, lr: float, wd: float) -> tuple[float, float]:
    """One Adam step on a batch of (entity row, IP, label); returns (mean cross-entropy, accuracy)."""
    ip_vectors, inputs = model.encode_ips(ips)
    entity_vectors = model.entity[rows]
    logits = np.einsum("ij,ij->i", entity_vectors, ip_vectors)
    p = _sigmoid(logits)
    loss = float(np.mean(np.logaddexp(0.0, logits) - labels * logits))
    accuracy = float(np.mean((p >= 0.5) == (labels == 1)))
    g = (p - labels) / len(labels)
    grad_entity = g[:, None] * ip_vectors
    grad = g[:, None] * entity_vectors  # d loss / d ip embedding
    for layer in range(len(model.weights) - 1, -1, -1):
        a = inputs[layer]
        grad_w, grad_b = a.T @ grad, grad.sum(axis=0)
        grad = grad @ model.weights[layer].T
        if layer:
            grad = grad * (a > 0)
        optimizers[f"w{layer}"].step(model.weights[layer], grad_w, lr, wd)
        optimizers[f"b{layer}"].step(model.biases[layer], grad_b, lr, 0.0)
    # The byte table as (position * 256 + byte value) rows: every IP adds its gradient to 16 of them.
    slots = (np.arange(ips.shape[1]) * 256 + ips.astype(np.int64)).ravel()
    touched, grad_slots = _sum_rows(slots, np.repeat(grad, ips.shape[1], axis=0))
    table = model.byte_table.reshape(-1, model.byte_table.shape[2])
    optimizers["bytes"].step(table, grad_slots, lr, wd, rows=touched)
    touched, grad_rows = _sum_rows(rows, grad_entity)
    optimizers["entity"].step(model.entity, grad_rows, lr, wd, rows=touched)
    return loss, accuracy


def _sum_rows(index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct indices, the sum of `values` rows for each): a sparse product, much faster than np.add.at."""
    import scipy.sparse as sp

    touched, inverse = np.unique(index, return_inverse=True)
    inverse = inverse.ravel()
    summing = sp.csr_matrix((np.ones(len(inverse)), (inverse, np.arange(len(inverse)))),
                            shape=(len(touched), len(inverse)))
    return touched, np.asarray(summing @ values)


def discriminator_auc(model: IPInsightsModel, rows: np.ndarray, ips: np.ndarray, hp: dict[str, Any]) -> float:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(SEED + 1)
    neg_rows, neg_ips = negatives(rows, ips, hp["random_negative_sampling_rate"],
                                  hp["shuffled_negative_sampling_rate"], rng)
    scores = np.concatenate([model.dot_products(rows, ips), model.dot_products(neg_rows, neg_ips)])
    labels = np.concatenate([np.ones(len(rows)), np.zeros(len(neg_rows))])
    return float(roc_auc_score(labels, scores))


class IPInsights:
    name = "ipinsights"
    image_repositories = ("ipinsights",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=("text/csv",)),
                ChannelSpec("validation", content_types=("text/csv",)))
    metrics = _metric_definitions()

    def load(self, model_dir: Path) -> IPInsightsPredictor:
        return IPInsightsPredictor(IPInsightsModel.load(Path(model_dir)))

    def train(self, ctx: TrainingContext) -> None:
        hp = self.hyperparameters.validate({k: v for k, v in ctx.hyperparameters.items() if v is not None})
        unknown = sorted(set(ctx.channels) - {c.name for c in self.channels})
        if unknown:
            raise DataError(f"IP Insights reads the train and validation channels, not {', '.join(unknown)}.")
        if "train" not in ctx.channels:
            raise DataError("IP Insights needs a 'train' channel.")
        buckets, d = hp["num_entity_vectors"], hp["vector_dim"]
        if buckets * d > MAX_ENTITY_CELLS:
            raise DataError(f"num_entity_vectors x vector_dim = {buckets * d:,} embedding values is more than sagelab "
                            f"trains on one machine ({MAX_ENTITY_CELLS:,}); lower num_entity_vectors (about twice the "
                            "number of distinct entities is enough) or vector_dim.")
        entities, ips = read_pairs(ctx.channels["train"])
        rows = entity_rows(entities, buckets)
        validation = None
        if "validation" in ctx.channels:
            v_entities, v_ips = read_pairs(ctx.channels["validation"])
            validation = (entity_rows(v_entities, buckets), v_ips)
        ctx.print(f"IP Insights: {len(rows)} training pairs, {len(set(entities))} distinct entities hashed into "
                  f"{buckets} vectors of {d} dimensions" + (f", {len(validation[0])} validation pairs" if validation
                                                           else "") + ".")
        model = self._fit(ctx, hp, rows, ips, validation)
        if validation is not None:
            qm.quality(ctx, "validation", "discriminator_auc", discriminator_auc(model, *validation, hp), tag="score")
        model.info = {"epochs": hp["epochs"], "training_pairs": len(rows)}
        model.save(ctx.model_dir)

    def _fit(self, ctx: TrainingContext, hp: dict[str, Any], rows: np.ndarray, ips: np.ndarray,
             validation: tuple[np.ndarray, np.ndarray] | None) -> IPInsightsModel:
        rng = np.random.default_rng(SEED)
        d, layers = hp["vector_dim"], hp["num_ip_encoder_layers"]
        model = IPInsightsModel(
            entity=rng.normal(0.0, 1.0 / np.sqrt(d), size=(hp["num_entity_vectors"], d)),
            byte_table=rng.normal(0.0, 1.0 / (4.0 * np.sqrt(d)), size=(ips.shape[1], 256, d)),
            weights=[rng.normal(0.0, 1.0 / np.sqrt(d), size=(d, d)) for _ in range(layers)],
            biases=[np.zeros(d) for _ in range(layers)])
        optimizers: dict[str, Any] = {"entity": _Adam(model.entity.shape),
                                      "bytes": _Adam((ips.shape[1] * 256, d))}
        for layer in range(layers):
            optimizers[f"w{layer}"] = _Adam((d, d))
            optimizers[f"b{layer}"] = _Adam((d,))
        n, batch, epochs = len(rows), hp["mini_batch_size"], hp["epochs"]
        lr, wd = hp["learning_rate"], hp["weight_decay"]
        for epoch in range(epochs):
            started = time.perf_counter()
            order = rng.permutation(n)
            losses, accuracies, sizes = [], [], []
            for number, start in enumerate(range(0, n, batch), start=1):
                pick = order[start:start + batch]
                neg_rows, neg_ips = negatives(rows[pick], ips[pick], hp["random_negative_sampling_rate"],
                                              hp["shuffled_negative_sampling_rate"], rng)
                batch_rows = np.concatenate([rows[pick], neg_rows])
                batch_ips = np.vstack([ips[pick], neg_ips])
                labels = np.concatenate([np.ones(len(pick)), np.zeros(len(neg_rows))])
                loss, accuracy = _train_step(model, optimizers, batch_rows, batch_ips, labels, lr, wd)
                if not np.isfinite(loss):
                    raise DataError(f"Training diverged in epoch {epoch}: the loss is no longer finite. Lower "
                                    "learning_rate.")
                losses.append(loss)
                accuracies.append(accuracy)
                sizes.append(len(labels))
                if number % hp["batch_metrics_publish_interval"] == 0:
                    ctx.print(f"#quality_metric: host={qm.HOST}, epoch={epoch}, batch={number} train "
                              f"binary_classification_cross_entropy <loss>={loss!r}")
            elapsed = time.perf_counter() - started
            qm.quality(ctx, "train", "binary_classification_cross_entropy", np.average(losses, weights=sizes),
                       epoch=epoch)
            qm.quality(ctx, "train", "binary_classification_accuracy", np.average(accuracies, weights=sizes),
                       tag="score", epoch=epoch)
            if validation is not None:
                qm.quality(ctx, "validation", "discriminator_auc", discriminator_auc(model, *validation, hp),
                           tag="score", epoch=epoch)
            qm.progress(ctx, epoch + 1, epochs)
            qm.throughput(ctx, n / max(elapsed, 1e-9))
        return model
