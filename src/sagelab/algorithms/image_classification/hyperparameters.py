"""Image classification's hyperparameter schema: the names, defaults and valid values SageMaker's
`image-classification` accepts (IC-Hyperparameter)."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

#: ResNet depths: the ImageNet nets (18..200) and the small-image nets (20..110), as `vision.resnet` builds them
NUM_LAYERS = (18, 20, 32, 34, 44, 50, 56, 101, 110, 152, 200)
OPTIMIZERS = ("sgd", "adam", "rmsprop", "nag")
AUGMENTATIONS = ("crop", "crop_color", "crop_color_transform")


def parse_image_shape(text: str) -> tuple[int, int, int]:
    """'3,224,224' -> (3, 224, 224); ValueError when it is not three positive integers."""
    parts = [p.strip() for p in str(text).strip().strip("'\"()[]").split(",")]
    values = tuple(int(p) for p in parts)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(text)
    return values  # type: ignore[return-value]


def parse_steps(text: str) -> list[int]:
    """'10, 20' -> [10, 20]: the epochs after which the learning rate is multiplied by lr_scheduler_factor."""
    steps = [int(p) for p in str(text).strip().strip("'\"[]").split(",") if p.strip()]
    if not steps or min(steps) < 1:
        raise ValueError(text)
    return sorted(steps)


def _check(values: dict[str, Any]) -> None:
    try:
        channels, height, width = parse_image_shape(values["image_shape"])
    except ValueError:
        raise ValidationError(f"Hyperparameter 'image_shape': expected 'num_channels,height,width' with positive "
                              f"integers (such as '3,224,224'), got {values['image_shape']!r}.") from None
    if channels != 3:
        raise ValidationError(f"Hyperparameter 'image_shape': sagelab's networks read RGB images, so num_channels "
                              f"must be 3; got {values['image_shape']!r}.")
    if min(height, width) < 8:
        raise ValidationError(f"Hyperparameter 'image_shape': height and width must be at least 8 pixels, got "
                              f"{values['image_shape']!r}.")
    values["image_shape"] = f"{channels},{height},{width}"
    if values["lr_scheduler_step"] is not None:
        try:
            values["lr_scheduler_step"] = ",".join(str(s) for s in parse_steps(values["lr_scheduler_step"]))
        except ValueError:
            raise ValidationError(f"Hyperparameter 'lr_scheduler_step': expected comma-separated positive epoch "
                                  f"numbers (such as '10,20'), got {values['lr_scheduler_step']!r}.") from None
    if values["use_pretrained_model"] == 1:
        raise ValidationError("Hyperparameter 'use_pretrained_model': 1 cannot be honoured: no pretrained weights "
                              "ship with sagelab and it never downloads any. Set use_pretrained_model=0 to train "
                              "the network from scratch.")
    frequency = values["checkpoint_frequency"]
    if frequency is not None and frequency > values["epochs"]:
        raise ValidationError(f"Hyperparameter 'checkpoint_frequency': expected a positive integer no greater "
                              f"than epochs ({values['epochs']}), got {frequency}.")
    if values["use_weighted_loss"] == 1 and values["multi_label"] != 1:
        raise ValidationError("Hyperparameter 'use_weighted_loss': 1 is only valid with multi_label=1 (it weighs "
                              "each label's cross-entropy by the class distribution).")


def _unit(name: str, default: float, help: str) -> Hyperparameter:
    return Hyperparameter(name, "float", default, min=0, max=1, help=help)


SCHEMA = HyperparameterSchema((
    Hyperparameter("num_classes", "int", required=True, min=1, help="Number of output classes."),
    Hyperparameter("num_training_samples", "int", required=True, min=1,
                   help="Number of training examples (informational: the data sets the count)."),
    Hyperparameter("num_layers", "int", 152, choices=NUM_LAYERS,
                   help="ResNet depth: 18, 34, 50, 101, 152, 200 for large images; 20, 32, 44, 56, 110 for small."),
    Hyperparameter("image_shape", "str", "3,224,224", help="Input dimensions 'num_channels,height,width'."),
    Hyperparameter("resize", "int", None, min=1,
                   help="Resize images so their shortest side has this many pixels before cropping."),
    Hyperparameter("use_pretrained_model", "int", 0, choices=(0, 1),
                   help="Must be 0: no pretrained weights ship with sagelab."),
    Hyperparameter("multi_label", "int", 0, choices=(0, 1), help="1: each image may have several labels."),
    Hyperparameter("use_weighted_loss", "int", 0, choices=(0, 1),
                   help="Multi-label only: weigh each label's loss by the class distribution."),
    Hyperparameter("augmentation_type", "str", None, choices=AUGMENTATIONS,
                   help="crop (random crop and flip), crop_color (+ hue/saturation/lightness), "
                        "crop_color_transform (+ rotation, shear, aspect ratio)."),
    Hyperparameter("top_k", "int", None, min=2, help="Also report the top-k accuracy (k > 1)."),
    Hyperparameter("epochs", "int", 30, min=1, help="Passes over the training data."),
    _unit("learning_rate", 0.1, "Initial learning rate."),
    _unit("lr_scheduler_factor", 0.1, "Factor the learning rate is multiplied by at each lr_scheduler_step."),
    Hyperparameter("lr_scheduler_step", "str", None, help="Epochs after which the learning rate is reduced: '10,20'."),
    Hyperparameter("mini_batch_size", "int", 32, min=1, help="Images per mini-batch."),
    Hyperparameter("optimizer", "str", "sgd", choices=OPTIMIZERS, help="sgd, adam, rmsprop or nag."),
    _unit("momentum", 0.9, "Momentum of sgd and nag."),
    _unit("weight_decay", 0.0001, "Weight decay of sgd and nag."),
    _unit("beta_1", 0.9, "adam: decay rate of the first moment estimates."),
    _unit("beta_2", 0.999, "adam: decay rate of the second moment estimates."),
    _unit("eps", 1e-8, "adam and rmsprop: the epsilon added to avoid division by 0."),
    _unit("gamma", 0.9, "rmsprop: decay factor of the moving average of the squared gradient."),
    Hyperparameter("early_stopping", "bool", False, help="Stop when validation accuracy stops improving."),
    Hyperparameter("early_stopping_min_epochs", "int", 10, min=1, help="Epochs before early stopping may stop."),
    Hyperparameter("early_stopping_patience", "int", 5, min=1,
                   help="Epochs without improvement before training stops."),
    _unit("early_stopping_tolerance", 0.0,
          "Relative improvement of validation accuracy below which an epoch does not count as better."),
    Hyperparameter("checkpoint_frequency", "int", None, min=1,
                   help="Also keep the parameters every this many epochs (in the model artifact)."),
    Hyperparameter("precision_dtype", "str", "float32", choices=("float32", "float16"),
                   help="Accepted; training runs in float32 on CPUs."),
    Hyperparameter("kv_store", "str", None, choices=("dist_sync", "dist_async"),
                   help="Distributed weight updates; accepted, one host trains."),
), checks=(_check,))
