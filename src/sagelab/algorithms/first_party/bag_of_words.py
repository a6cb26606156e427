"""Bag-of-words documents, as SageMaker's topic models (LDA, NTM) read them: one record per document, one
feature per vocabulary word, holding how often the word occurs (dense CSV, or dense or sparse
recordIO-protobuf). Counts must be finite and non-negative; the first bad cell is named, in training
(`DataError`, the job's FailureReason) and at inference (`InferenceError` 400).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.base import DataError, InferenceError, TrainingContext
from sagelab.algorithms.first_party import io as onep_io


def read_documents(ctx: TrainingContext, name: str, feature_dim: int) -> sp.csr_matrix | None:
    """The channel's documents as a float32 CSR matrix (documents x words); None when the job has no such
    channel. CSV follows the 1P rule: the first column is a label unless `label_size=0`."""
    channel = ctx.channels.get(name)
    if channel is None:
        return None
    x, _ = onep_io.read_training_channel(channel, label_size=1, feature_dim=feature_dim, label_required=False)
    x = sp.csr_matrix(x, dtype=np.float32)
    if x.shape[0] == 0:
        raise DataError(f"Channel '{name}' holds no documents.")
    bad = first_negative(x)
    if bad is not None:
        row, column, value = bad
        raise DataError(f"Channel '{name}', record {row + 1}: word {column + 1} has count {value!r}; word counts "
                        "must be >= 0.")
    return x


def first_negative(x: sp.csr_matrix | np.ndarray) -> tuple[int, int, float] | None:
    """(row, column, value) of the first negative cell, or None."""
    if sp.issparse(x):
        coo = sp.coo_matrix(x)
        negative = np.flatnonzero(coo.data < 0)
        if not len(negative):
            return None
        order = np.lexsort((coo.col[negative], coo.row[negative]))
        i = negative[order[0]]
        return int(coo.row[i]), int(coo.col[i]), float(coo.data[i])
    where = np.argwhere(x < 0)
    if not len(where):
        return None
    row, column = (int(v) for v in where[0])
    return row, column, float(x[row, column])


def parse_documents(body: bytes, content_type: str, feature_dim: int) -> sp.csr_matrix:
    """An inference request's documents as a CSR matrix of counts (CSV, JSON, JSON Lines or protobuf)."""
    x = onep_io.parse_request(body, content_type, feature_dim=feature_dim)
    x = sp.csr_matrix(x, dtype=np.float32)
    bad = first_negative(x)
    if bad is not None:
        row, column, value = bad
        raise InferenceError(400, f"Record {row + 1}, word {column + 1}: count {value!r} is negative; word counts "
                                  "must be >= 0.")
    return x
