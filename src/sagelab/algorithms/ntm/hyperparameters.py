"""NTM's hyperparameter schema: the names, defaults and valid values SageMaker's `ntm` accepts."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

OPTIMIZERS = ("sgd", "adam", "adagrad", "rmsprop", "adadelta")
ACTIVATIONS = ("sigmoid", "tanh", "relu")


def _check_encoder_layers(values: dict[str, Any]) -> None:
    layers = values["encoder_layers"]
    if layers != AUTO and (not layers or any(width < 1 for width in layers)):
        raise ValidationError(f"Hyperparameter 'encoder_layers': expected 'auto' or a comma-separated list of layer "
                              f"widths >= 1 (such as 50,25), got {layers!r}.")


SCHEMA = HyperparameterSchema((
    Hyperparameter("feature_dim", "int", required=True, min=1, max=1_000_000, help="Vocabulary size."),
    Hyperparameter("num_topics", "int", required=True, min=2, max=1000, help="Number of topics."),
    Hyperparameter("batch_norm", "bool", False, help="Batch normalization after each encoder layer."),
    Hyperparameter("clip_gradient", "float", float("inf"), min=1e-3,
                   help="Largest magnitude of a gradient element (Infinity = no clipping)."),
    Hyperparameter("encoder_layers", "int_list", AUTO, allow_auto=True,
                   help="Widths of the encoder's layers; auto = 3 x num_topics, 2 x num_topics."),
    Hyperparameter("encoder_layers_activation", "str", "sigmoid", choices=ACTIVATIONS,
                   help="Activation of the encoder's layers."),
    Hyperparameter("epochs", "int", 50, min=1, max=100, help="Most passes over the training data."),
    Hyperparameter("learning_rate", "float", 0.001, min=1e-6, max=1.0, help="Optimizer learning rate."),
    Hyperparameter("mini_batch_size", "int", 256, min=1, max=10_000, help="Documents per mini-batch."),
    Hyperparameter("num_patience_epochs", "int", 3, min=1, max=10,
                   help="Epochs without improvement after which training stops."),
    Hyperparameter("optimizer", "str", "adadelta", choices=OPTIMIZERS, help="Optimizer."),
    Hyperparameter("rescale_gradient", "float", 1.0, min=1e-3, max=1.0, help="Factor applied to every gradient."),
    Hyperparameter("sub_sample", "float", 1.0, min=0, max=1, min_inclusive=False,
                   help="Fraction of the training documents sampled for each epoch."),
    Hyperparameter("tolerance", "float", 0.001, min=1e-6, max=0.1,
                   help="Relative improvement of the loss that counts as progress (early stopping)."),
    Hyperparameter("weight_decay", "float", 0.0, min=0, max=1, help="L2 weight decay."),
), checks=(_check_encoder_layers,))
