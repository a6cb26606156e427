"""k-NN's model (the index of stored records) and its artifact.

The artifact is `model.npz` (the stored records after any dimension reduction, their labels, and the
projection matrix as CSR parts; NumPy arrays only, read with allow_pickle=False) and `model.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.first_party.artifact import MODEL_NPZ, read_artifact, write_artifact

FORMAT = "sagelab-knn/1"
#: Queries scored at once by the inner-product search (bounds the score matrix to ~chunk x stored records).
_CHUNK = 1024


class KNNModel:
    def __init__(self, points: np.ndarray, labels: np.ndarray, *, k: int, predictor_type: str, index_metric: str,
                 feature_dim: int, projection: sp.csr_matrix | None = None, info: dict[str, Any] | None = None):
        self.points = np.ascontiguousarray(points, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.float32)
        self.k = int(k)
        self.predictor_type = predictor_type
        self.index_metric = index_metric
        self.feature_dim = int(feature_dim)
        self.projection = projection
        self.info = info or {}
        self._index: Any = None
        self._classes, self._class_of = np.unique(self.labels, return_inverse=True)

    @classmethod
    def build(cls, x: np.ndarray, labels: np.ndarray, *, k: int, predictor_type: str, index_metric: str,
              projection: sp.csr_matrix | None, info: dict[str, Any]) -> KNNModel:
        """A model over the (sampled) training records `x`: projected, and normalised for COSINE."""
        model = cls(np.empty((0, 0)), labels, k=k, predictor_type=predictor_type, index_metric=index_metric,
                    feature_dim=x.shape[1], projection=projection, info=info)
        model.points = np.ascontiguousarray(model.prepare(x), dtype=np.float32)
        return model

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Records as the index stores them: reduced, and unit length for COSINE."""
        x = np.asarray(x, dtype=np.float32)
        if self.projection is not None:
            x = np.asarray(self.projection.dot(x.T).T, dtype=np.float32)
        if self.index_metric == "COSINE":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norms > 0, norms, 1.0)
        return x

    # -- search --------------------------------------------------------------------------------------------------

    def l2_index(self) -> Any:
        """scikit-learn's exact Euclidean index over the stored records (a k-d tree or brute force, as it picks)."""
        if self._index is None:
            from sklearn.neighbors import NearestNeighbors

            self._index = NearestNeighbors(n_neighbors=self.k).fit(self.points)
        return self._index

    def neighbours(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, indices), each n x k, nearest first: Euclidean distances for L2, similarities otherwise."""
        queries = self.prepare(x)
        if self.index_metric == "L2":
            return self.l2_index().kneighbors(queries, n_neighbors=self.k)
        scores = np.empty((len(queries), self.k), dtype=np.float32)
        indices = np.empty((len(queries), self.k), dtype=np.int64)
        for start in range(0, len(queries), _CHUNK):
            block = queries[start:start + _CHUNK] @ self.points.T
            if self.k < block.shape[1]:
                top = np.argpartition(-block, self.k - 1, axis=1)[:, :self.k]
            else:
                top = np.broadcast_to(np.arange(block.shape[1]), block.shape).copy()
            top_scores = np.take_along_axis(block, top, axis=1)
            order = np.lexsort((top, -top_scores), axis=1)  # best first; ties by stored order
            indices[start:start + len(block)] = np.take_along_axis(top, order, axis=1)
            scores[start:start + len(block)] = np.take_along_axis(top_scores, order, axis=1)
        return scores, indices

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(predicted labels, neighbour scores, neighbour labels)."""
        scores, indices = self.neighbours(x)
        neighbour_labels = self.labels[indices]
        if self.predictor_type == "regressor":
            predicted = neighbour_labels.astype(np.float64).mean(axis=1).astype(np.float32)
        else:
            predicted = self._classes[self._vote(self._class_of[indices])]
        return predicted, scores.astype(np.float32), neighbour_labels

    def _vote(self, classes: np.ndarray) -> np.ndarray:
        """The most frequent class per row; a tie goes to the tied class whose first neighbour is nearest."""
        rows, k = classes.shape
        counts = np.zeros((rows, len(self._classes)), dtype=np.int64)
        first = np.full((rows, len(self._classes)), k, dtype=np.int64)
        row_index = np.arange(rows)
        for rank in range(k - 1, -1, -1):
            counts[row_index, classes[:, rank]] += 1
            first[row_index, classes[:, rank]] = rank
        return np.argmax(counts * (k + 1) - first, axis=1)

    # -- artifact -------------------------------------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        arrays: dict[str, np.ndarray] = {"points": self.points, "labels": self.labels}
        if self.projection is not None:
            csr = self.projection.tocsr()
            arrays.update(projection_data=csr.data.astype(np.float64), projection_indices=csr.indices,
                          projection_indptr=csr.indptr, projection_shape=np.asarray(csr.shape, dtype=np.int64))
        write_artifact(model_dir, FORMAT, arrays, {
            "k": self.k, "predictor_type": self.predictor_type, "index_metric": self.index_metric,
            "feature_dim": self.feature_dim, "stored_records": int(self.points.shape[0]), **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> KNNModel:
        meta, arrays = read_artifact(model_dir, FORMAT, "k-NN")
        points, labels = arrays["points"], arrays["labels"]
        projection = None
        if "projection_data" in arrays:
            projection = sp.csr_matrix((arrays["projection_data"], arrays["projection_indices"],
                                        arrays["projection_indptr"]),
                                       shape=tuple(int(n) for n in arrays["projection_shape"]))
        if points.ndim != 2 or labels.shape != (points.shape[0],):
            raise ValueError(f"{model_dir / MODEL_NPZ}: {points.shape} stored records do not match {labels.shape} "
                             "labels.")
        skip = ("k", "predictor_type", "index_metric", "feature_dim", "stored_records")
        return cls(points, labels, k=meta["k"], predictor_type=meta["predictor_type"],
                   index_metric=meta["index_metric"], feature_dim=meta["feature_dim"], projection=projection,
                   info={key: value for key, value in meta.items() if key not in skip})


