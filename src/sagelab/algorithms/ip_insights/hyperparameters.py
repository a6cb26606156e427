"""IP Insights' hyperparameter schema: the names, defaults and valid values SageMaker's `ipinsights`
accepts.
"""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError


def _p(name: str, kind: str, default: Any = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, default=default, **kw)


def _check_rates(values: dict[str, Any]) -> None:
    total = values["random_negative_sampling_rate"] + values["shuffled_negative_sampling_rate"]
    if not 1 <= total <= 500:
        raise ValidationError("Hyperparameters 'random_negative_sampling_rate' and 'shuffled_negative_sampling_rate' "
                              f"must add up to 1..500 (negative samples per real pair), got {total}.")


def _schema() -> HyperparameterSchema:
    params = [
        _p("num_entity_vectors", "int", required=True, min=1, max=250_000_000,
           help="Entity embedding rows; entities are hashed into them (about twice the distinct entities)."),
        _p("vector_dim", "int", required=True, min=4, max=4096),
        _p("batch_metrics_publish_interval", "int", 1000, min=1),
        _p("epochs", "int", 10, min=1),
        _p("learning_rate", "float", 0.001, min=1e-6, max=10.0),
        _p("mini_batch_size", "int", 10000, min=1, max=500_000),
        _p("num_ip_encoder_layers", "int", 1, min=0, max=100),
        _p("random_negative_sampling_rate", "int", 1, min=0, max=500),
        _p("shuffled_negative_sampling_rate", "int", 1, min=0, max=500),
        _p("weight_decay", "float", 0.00001, min=0.0, max=10.0),
    ]
    return HyperparameterSchema(params=params, checks=(_check_rates,))


SCHEMA = _schema()
