"""PCA's hyperparameter schema: the names, defaults and valid values SageMaker's `pca` accepts."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError


def _check_components(values: dict[str, Any]) -> None:
    if values["num_components"] > values["feature_dim"]:
        raise ValidationError(f"Hyperparameter 'num_components': expected an integer from 1 to feature_dim = "
                              f"{values['feature_dim']}, got {values['num_components']}.")


SCHEMA = HyperparameterSchema((
    Hyperparameter("feature_dim", "int", required=True, min=1, help="Number of features of each record."),
    Hyperparameter("mini_batch_size", "int", required=True, min=1,
                   help="Records per mini-batch (the SDK sets it; the solvers see all records at once)."),
    Hyperparameter("num_components", "int", required=True, min=1, help="Number of principal components."),
    Hyperparameter("algorithm_mode", "str", "regular", choices=("regular", "randomized"),
                   help="regular: exact; randomized: randomized SVD, for many features."),
    Hyperparameter("extra_components", "int", -1, min=-1,
                   help="Randomized mode's oversampling; -1 = max(10, num_components). Ignored in regular mode."),
    Hyperparameter("subtract_mean", "bool", True, help="Centre the data (in training and at inference)."),
    Hyperparameter("force_dense", "bool", True, help="Accepted as AWS does; records are always dense."),
    Hyperparameter("epochs", "int", 1, min=1, help="Accepted as AWS does; PCA makes one pass."),
), checks=(_check_components,))
