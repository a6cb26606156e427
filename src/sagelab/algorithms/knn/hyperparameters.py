"""k-NN's hyperparameter schema: the names, defaults and valid values SageMaker's `knn` accepts."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

PREDICTOR_TYPES = ("classifier", "regressor")
INDEX_TYPES = ("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ")
INDEX_METRICS = ("L2", "INNER_PRODUCT", "COSINE")
PQ_M_VALUES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)


def _check_combinations(values: dict[str, Any]) -> None:
    kind, target = values["dimension_reduction_type"], values["dimension_reduction_target"]
    if kind is not None:
        if target is None:
            raise ValidationError("Hyperparameter 'dimension_reduction_target' is required when "
                                  f"dimension_reduction_type is {kind!r}: expected an integer from 1 to "
                                  f"feature_dim - 1 = {values['feature_dim'] - 1}.")
        if target >= values["feature_dim"]:
            raise ValidationError(f"Hyperparameter 'dimension_reduction_target': expected an integer from 1 to "
                                  f"feature_dim - 1 = {values['feature_dim'] - 1}, got {target}.")
    if values["index_type"] == "faiss.IVFPQ" and values["index_metric"] != "L2":
        raise ValidationError(f"Hyperparameter 'index_metric': {values['index_metric']} is not supported with "
                              "index_type faiss.IVFPQ; expected L2.")


SCHEMA = HyperparameterSchema((
    Hyperparameter("feature_dim", "int", required=True, min=1, help="Number of features of each record."),
    Hyperparameter("k", "int", required=True, min=1, help="Number of nearest neighbours."),
    Hyperparameter("predictor_type", "str", required=True, choices=PREDICTOR_TYPES,
                   help="classifier (majority label) or regressor (mean label)."),
    Hyperparameter("sample_size", "int", required=True, min=1,
                   help="Number of training records sampled into the index."),
    Hyperparameter("dimension_reduction_target", "int", None, min=1,
                   help="Dimension to reduce to (1 .. feature_dim-1); required with dimension_reduction_type."),
    Hyperparameter("dimension_reduction_type", "str", None, choices=("sign", "fjlt"),
                   help="sign: random sign projection; fjlt: sparse Johnson-Lindenstrauss projection. Default: none."),
    Hyperparameter("faiss_index_ivf_nlists", "int", AUTO, allow_auto=True, min=1,
                   help="IVF centroids; auto = sqrt(sample_size). Recorded only: the search is exact."),
    Hyperparameter("faiss_index_pq_m", "int", None, choices=PQ_M_VALUES,
                   help="Product-quantiser sub-vectors of faiss.IVFPQ. Recorded only: the search is exact."),
    Hyperparameter("index_metric", "str", "L2", choices=INDEX_METRICS,
                   help="L2 (Euclidean), INNER_PRODUCT or COSINE."),
    Hyperparameter("index_type", "str", "faiss.Flat", choices=INDEX_TYPES,
                   help="faiss index type; sagelab searches exactly whichever is named."),
    Hyperparameter("mini_batch_size", "int", 5000, min=1, help="Records per mini-batch."),
), checks=(_check_combinations,))
