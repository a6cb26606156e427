"""Semantic Segmentation's hyperparameter schema: the names, defaults and valid values SageMaker's
`semantic-segmentation` accepts (DG `segmentation-hyperparameters`), plus one sagelab extension,
`_sagelab_base_width`, said so in its help.

Defaults follow the current AWS page where releases differ (crop_size 240 where the 2023 snapshot said 480;
epochs 10 and mini_batch_size 16 as reference/builtin-algorithms.md §17 records them). lr_scheduler_factor
(0.1) and lr_scheduler_step (a list of epochs, required with lr_scheduler step) are not on the 2023 DG page:
their names follow the other image algorithms' (image classification's lr_scheduler_factor / lr_scheduler_step).
"""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

ALGORITHMS = ("fcn", "psp", "deeplab")
BACKBONES = ("resnet-50", "resnet-101")
SCHEDULERS = ("poly", "step", "cosine")
OPTIMIZERS = ("adam", "adagrad", "nag", "rmsprop", "sgd")


def _check(values: dict[str, Any]) -> None:
    if values["use_pretrained_model"]:
        raise ValidationError("Hyperparameter 'use_pretrained_model': True (the default) asks for ImageNet-pretrained "
                              "backbone weights, but no pretrained weights ship with sagelab and it never downloads "
                              "any. Set use_pretrained_model to False to train the backbone from scratch.")
    if values["mini_batch_size"] == 1 and values["algorithm"] != "fcn":
        raise ValidationError(f"Hyperparameter 'mini_batch_size': {values['algorithm']} pools the whole feature map "
                              "and normalises the pooled batch, which needs at least 2 images; expected >= 2.")
    raw = str(values["lr_scheduler_step"] or "").strip().strip("[]")
    try:
        steps = [int(float(p)) for p in raw.split(",") if p.strip()]
    except ValueError:
        raise ValidationError(f"Hyperparameter 'lr_scheduler_step': expected a comma-separated list of epochs such "
                              f"as \"10,20\", got {values['lr_scheduler_step']!r}.") from None
    if any(s < 1 for s in steps) or steps != sorted(set(steps)):
        raise ValidationError(f"Hyperparameter 'lr_scheduler_step': the epochs must be positive and increasing, got "
                              f"{values['lr_scheduler_step']!r}.")
    if values["lr_scheduler"] == "step" and not steps:
        raise ValidationError("Hyperparameter 'lr_scheduler_step' is required when lr_scheduler is 'step': the "
                              "epochs at which the learning rate is multiplied by lr_scheduler_factor, e.g. \"10,20\".")
    values["lr_scheduler_step"] = steps


SCHEMA = HyperparameterSchema((
    Hyperparameter("num_classes", "int", None, required=True, min=2, max=254,
                   help="Classes to segment; mask value 255 is ignored."),
    Hyperparameter("num_training_samples", "int", None, required=True, min=1,
                   help="Images in the training data; sets the learning-rate schedule's length."),
    Hyperparameter("algorithm", "str", "fcn", choices=ALGORITHMS, help="The decoder: FCN, PSP or DeepLab V3."),
    Hyperparameter("backbone", "str", "resnet-50", choices=BACKBONES, help="The encoder: ResNet-50 or ResNet-101."),
    Hyperparameter("use_pretrained_model", "bool", True,
                   help="Pretrained backbone weights: none ship with sagelab, so only False is accepted."),
    Hyperparameter("_sagelab_base_width", "int", 64, min=4, max=64,
                   help="sagelab extension, not a SageMaker hyperparameter: the backbone's first-stage width "
                        "(64 = the standard ResNet). Smaller values train the same architecture, narrower, on CPUs."),
    Hyperparameter("crop_size", "int", 240, min=16, min_inclusive=False,
                   help="Side of the square training crops; rounded up to a multiple of 8."),
    Hyperparameter("base_size", "int", 520, min=16, min_inclusive=False,
                   help="Images are rescaled so their long side is base_size times a random 0.5..2.0 before "
                        "cropping; inference rescales the long side to base_size."),
    Hyperparameter("epochs", "int", 10, min=1, help="Passes over the training data."),
    Hyperparameter("learning_rate", "float", 0.001, min=0, min_inclusive=False, max=1,
                   help="Initial learning rate."),
    Hyperparameter("lr_scheduler", "str", "poly", choices=SCHEDULERS, help="Shape of the learning-rate decay."),
    Hyperparameter("lr_scheduler_factor", "float", 0.1, min=0, min_inclusive=False, max=1,
                   help="step: the factor applied to the learning rate at each lr_scheduler_step epoch."),
    Hyperparameter("lr_scheduler_step", "str", "",
                   help="step: comma-separated epochs at which the learning rate is reduced, e.g. \"10,20\"."),
    Hyperparameter("mini_batch_size", "int", 16, min=1, help="Training batch size."),
    Hyperparameter("validation_mini_batch_size", "int", 16, min=1, help="Validation batch size."),
    Hyperparameter("optimizer", "str", "sgd", choices=OPTIMIZERS, help="The optimizer."),
    Hyperparameter("momentum", "float", 0.9, min=0, min_inclusive=False, max=1,
                   help="Momentum of sgd (and nag); other optimizers ignore it."),
    Hyperparameter("weight_decay", "float", 0.0001, min=0, min_inclusive=False, max=1, max_inclusive=False,
                   help="Weight decay of sgd (and nag); other optimizers ignore it."),
    Hyperparameter("gamma1", "float", 0.9, min=0, max=1,
                   help="rmsprop: decay factor of the moving average of the squared gradient."),
    Hyperparameter("gamma2", "float", 0.9, min=0, max=1, help="rmsprop: momentum factor."),
    Hyperparameter("early_stopping", "bool", False, help="Stop when validation mIOU stops improving."),
    Hyperparameter("early_stopping_min_epochs", "int", 5, min=1, help="Epochs always run before stopping early."),
    Hyperparameter("early_stopping_patience", "int", 4, min=1,
                   help="Epochs without enough improvement of validation mIOU before stopping."),
    Hyperparameter("early_stopping_tolerance", "float", 0.0, min=0, max=1,
                   help="Relative mIOU improvement below which an epoch counts as not improved."),
    Hyperparameter("syncbn", "bool", False,
                   help="Batch-norm statistics across GPUs: accepted; one CPU process has nothing to sync."),
), checks=(_check,))
