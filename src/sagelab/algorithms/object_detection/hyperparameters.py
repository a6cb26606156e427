"""Object Detection's hyperparameter schema: the names, defaults and valid values SageMaker's `object-detection`
accepts (DG `object-detection-api-config`), plus two sagelab-only `_sagelab_*` keys that shrink the network and
the images so that a detector trains in seconds on a CPU (see `algorithm`'s docstring)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

NETWORKS = ("vgg-16", "resnet-50")
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adadelta")
#: The documented minimum of image_shape, and the one `_sagelab_small_images` lowers it to.
MIN_IMAGE_SHAPE, MIN_SMALL_IMAGE_SHAPE = 300, 32
#: sagelab-only: channels of the base network's first stage (VGG-16 and ResNet-50 both have 64).
BASE_WIDTH, BASE_WIDTH_KEY = 64, "_sagelab_base_width"
SMALL_IMAGES_KEY = "_sagelab_small_images"


def _check(values: dict[str, Any]) -> None:
    if values["use_pretrained_model"] == 1:
        raise ValidationError("Hyperparameter 'use_pretrained_model': 1 (the default) loads ImageNet weights, and "
                              "no pretrained weights ship with sagelab (it never downloads any); set "
                              "use_pretrained_model to 0 to train the network from scratch.")
    raw = values["lr_scheduler_step"]
    text = ",".join(map(str, raw)) if isinstance(raw, list) else str(raw or "").strip().strip("[]")
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        steps = [-1]
    if any(step < 1 for step in steps):
        raise ValidationError(f"Hyperparameter 'lr_scheduler_step': expected comma-separated positive epoch "
                              f"numbers such as '10,20', got {values['lr_scheduler_step']!r}.")
    values["lr_scheduler_step"] = steps
    if values["freeze_layer_pattern"]:
        try:
            re.compile(values["freeze_layer_pattern"])
        except re.error as exc:
            raise ValidationError(f"Hyperparameter 'freeze_layer_pattern': {values['freeze_layer_pattern']!r} is "
                                  f"not a valid regular expression ({exc}).") from None
    width = values.get(BASE_WIDTH_KEY, BASE_WIDTH)
    try:
        width = int(str(width))
    except ValueError:
        width = 0
    if not 1 <= width <= BASE_WIDTH:
        raise ValidationError(f"Hyperparameter {BASE_WIDTH_KEY!r} (sagelab only): expected an integer 1..64, "
                              f"got {values.get(BASE_WIDTH_KEY)!r}.")
    values[BASE_WIDTH_KEY] = width


PARAMS = (
    Hyperparameter("num_classes", "int", None, required=True, min=1, help="Number of object classes."),
    Hyperparameter("num_training_samples", "int", None, required=True, min=1,
                   help="Training images (accepted; the images are counted)."),
    Hyperparameter("base_network", "str", "vgg-16", choices=NETWORKS, help="The base network."),
    Hyperparameter("use_pretrained_model", "int", 1, choices=(0, 1),
                   help="1 loads ImageNet weights: refused (none ship with sagelab); 0 trains from scratch."),
    Hyperparameter("image_shape", "int", 300, min=MIN_IMAGE_SHAPE,
                   help="Images are resized to this square size (>= 300)."),
    Hyperparameter("epochs", "int", 30, min=1, help="Passes over the training data."),
    Hyperparameter("learning_rate", "float", 0.001, min=0, min_inclusive=False, max=1, help="Initial learning rate."),
    Hyperparameter("lr_scheduler_factor", "float", 0.1, min=0, max=1, min_inclusive=False, max_inclusive=False,
                   help="The learning rate is multiplied by this at each lr_scheduler_step epoch."),
    Hyperparameter("lr_scheduler_step", "str", "", help="Epochs at which the learning rate drops: '10,20'."),
    Hyperparameter("mini_batch_size", "int", 32, min=1, help="Images per mini-batch."),
    Hyperparameter("optimizer", "str", "sgd", choices=OPTIMIZERS, help="Optimizer."),
    Hyperparameter("momentum", "float", 0.9, min=0, min_inclusive=False, max=1, help="Momentum of sgd."),
    Hyperparameter("weight_decay", "float", 0.0005, min=0, max=1, min_inclusive=False, max_inclusive=False,
                   help="Weight decay of sgd and rmsprop."),
    Hyperparameter("nms_threshold", "float", 0.45, min=0, min_inclusive=False, max=1,
                   help="Non-maximum suppression: boxes of one class overlapping more than this (IoU) are dropped."),
    Hyperparameter("overlap_threshold", "float", 0.5, min=0, min_inclusive=False, max=1,
                   help="IoU at which a detection counts as correct (mAP), and at which a default box is matched to "
                        "an object in training."),
    Hyperparameter("label_width", "int", 350, min=1,
                   help="The longest label of a RecordIO record (2 header values + 5 per object)."),
    Hyperparameter("freeze_layer_pattern", "str", "", help="Regex of base-network layers whose weights stay fixed."),
    Hyperparameter("kv_store", "str", None, choices=("dist_sync", "dist_async"),
                   help="Distributed weight synchronisation (accepted; training runs on one machine)."),
    Hyperparameter("early_stopping", "bool", False, help="Stop when validation:mAP stops improving."),
    Hyperparameter("early_stopping_min_epochs", "int", 10, min=1, help="Epochs before early stopping may stop."),
    Hyperparameter("early_stopping_patience", "int", 5, min=1, help="Epochs without improvement before stopping."),
    Hyperparameter("early_stopping_tolerance", "float", 0.0, min=0, max=1,
                   help="Relative improvement of validation:mAP that counts."),
)


@dataclasses.dataclass(frozen=True)
class ObjectDetectionSchema(HyperparameterSchema):
    """The documented schema; `_sagelab_small_images=true` lowers image_shape's minimum from 300 to 32."""

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        small = str(raw.get(SMALL_IMAGES_KEY, "false")).strip().lower()
        if small not in ("true", "false", "1", "0"):
            raise ValidationError(f"Hyperparameter {SMALL_IMAGES_KEY!r} (sagelab only): expected true or false, "
                                  f"got {raw.get(SMALL_IMAGES_KEY)!r}.")
        if small in ("true", "1"):
            params = tuple(dataclasses.replace(p, min=MIN_SMALL_IMAGE_SHAPE) if p.name == "image_shape" else p
                           for p in self.params)
            values = HyperparameterSchema(params, self.checks).validate(raw)
        else:
            values = super().validate(raw)
        values[SMALL_IMAGES_KEY] = small in ("true", "1")
        return values


SCHEMA = ObjectDetectionSchema(PARAMS, checks=(_check,))
