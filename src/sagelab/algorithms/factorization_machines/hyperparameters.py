"""Factorization Machines' hyperparameter schema: the names, defaults and valid values SageMaker's
`factorization-machines` accepts, with per-group (bias, linear, factors) learning rates, weight decays and
initialisation.
"""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.factorization_machines.model import BINARY, REGRESSOR
from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

GROUPS = ("bias", "linear", "factors")
_DEFAULTS = {"bias": (0.1, 0.01, 0.01), "linear": (0.001, 0.001, 0.01), "factors": (0.0001, 0.00001, 0.001)}


def _p(name: str, kind: str, default: Any = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, default=default, **kw)


def _schema() -> HyperparameterSchema:
    params = [
        _p("feature_dim", "int", required=True, min=1, help="Dimension of the input feature space."),
        _p("num_factors", "int", required=True, min=1, help="Dimensionality of the factorization."),
        _p("predictor_type", "str", required=True, choices=(BINARY, REGRESSOR)),
        _p("epochs", "int", 1, min=1),
        _p("mini_batch_size", "int", 1000, min=1),
        _p("clip_gradient", "float", help="Clip each gradient to [-clip_gradient, clip_gradient]."),
        _p("eps", "float", help="Adam's epsilon; 1e-8 when unset."),
        _p("rescale_grad", "float", help="Multiply each gradient by this before the update."),
    ]
    for group in GROUPS:
        lr, wd, sigma = _DEFAULTS[group]
        params += [
            _p(f"{group}_lr", "float", lr, min=0.0),
            _p(f"{group}_wd", "float", wd, min=0.0),
            _p(f"{group}_init_method", "str", "normal", choices=("normal", "uniform", "constant")),
            _p(f"{group}_init_scale", "float", min=0.0, help="Half-width of the uniform initialisation."),
            _p(f"{group}_init_sigma", "float", sigma, min=0.0, help="Standard deviation of the normal initialisation."),
            _p(f"{group}_init_value", "float", help="The constant initial value."),
        ]
    return HyperparameterSchema(params=params, checks=(_check_epsilon,))


def _check_epsilon(values: dict[str, Any]) -> None:
    eps = values.get("eps")
    if eps is not None and eps <= 0:
        raise ValidationError(f"Hyperparameter 'eps': expected a positive number (Adam's epsilon), got {eps:g}.")


SCHEMA = _schema()
