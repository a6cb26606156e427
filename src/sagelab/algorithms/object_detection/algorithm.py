"""SageMaker's Object Detection (`object-detection` images): an SSD detector trained with PyTorch from RecordIO
records, images with annotation JSON, or an augmented manifest (see `annotations`); see `network` for the
architecture and `evaluation` for validation:mAP.

How the documented hyperparameters map:
- base_network vgg-16 (a VGG-16 with batch normalisation, written in `network`) or resnet-50 (`vision.resnet`).
- use_pretrained_model: the documented default 1 loads ImageNet weights; none ship with sagelab and it never
  downloads, so 1 is refused when the job is created and 0 trains from scratch. Incremental training (the
  `model` channel) is not supported.
- image_shape: images are resized (not cropped) to this square; at least 300, as documented.
- epochs, mini_batch_size, learning_rate, lr_scheduler_step / lr_scheduler_factor (the rate is multiplied by the
  factor at each listed epoch), optimizer sgd (momentum, weight_decay), adam, rmsprop (weight_decay), adadelta.
- overlap_threshold: the IoU at which a detection counts in validation:mAP, and at which a default box is
  matched to an object in training; nms_threshold: the IoU of non-maximum suppression.
- label_width: a RecordIO record whose label holds more values is refused; freeze_layer_pattern: base-network
  parameters whose name (conv1_1.0.weight, ..., fc7...; ResNet-50: net.stem..., net.stages.0...) matches the
  regex (`re.match`) are not trained.
- early_stopping: after early_stopping_min_epochs, training stops when validation:mAP has not improved on the
  best by more than early_stopping_tolerance (relative) for early_stopping_patience epochs. The model kept is
  the epoch with the best validation:mAP either way.
- num_training_samples and kv_store are accepted and change nothing (the images are counted; one machine).
- Augmentation: random horizontal flips (MXNet's SSD also crops and jitters colours).
- Seeded (torch generator 0): the same data and hyperparameters give the same model. Training uses every core
  from 1,000 training images, one thread below (`torch_threads`).

Two sagelab-only hyperparameters, `_`-prefixed like the ones tuning jobs inject, so that a detector trains in
seconds on a CPU (the published networks at 300 x 300 take hours without a GPU): `_sagelab_base_width` (1..64,
default 64 = the published widths) narrows every layer in proportion, and `_sagelab_small_images=true` lowers
image_shape's minimum from 300 to 32. Without them the schema is SageMaker's.

Metric: `validation:mAP` (Maximize), the only one the algorithm documents, logged per epoch as
`#quality_metric: host=algo-1, epoch=3, validation mAP <score>=0.81` and once more, without the epoch, for the
model kept. The training losses are logged per epoch (`train cross_entropy`, `train smooth_l1`).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.object_detection import annotations
from sagelab.algorithms.object_detection.annotations import Samples
from sagelab.algorithms.object_detection.evaluation import mean_average_precision
from sagelab.algorithms.object_detection.hyperparameters import BASE_WIDTH_KEY, SCHEMA
from sagelab.algorithms.torch_threads import torch_threads

SEED = 0
#: training images from which torch uses every core (below: one thread, see torch_threads)
PARALLEL_IMAGES = 1_000
_DATA_TYPES = (annotations.RECORDIO, *annotations.IMAGE_TYPES)
MAP_REGEX = r"#quality_metric: host=\S+, (?:epoch=\S+, )?validation mAP <score>=(\S+)"


def settings_for(hp: dict[str, Any]) -> dict[str, Any]:
    return {"num_classes": hp["num_classes"], "base_network": hp["base_network"], "image_shape": hp["image_shape"],
            "base_width": hp[BASE_WIDTH_KEY], "nms_threshold": hp["nms_threshold"]}


class ObjectDetection:
    name = "object-detection"
    image_repositories = ("object-detection",)
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=_DATA_TYPES, default_content_type=annotations.RECORDIO),
        ChannelSpec("validation", required=True, content_types=_DATA_TYPES,
                    default_content_type=annotations.RECORDIO),
        ChannelSpec("train_annotation", content_types=(annotations.JSON,), default_content_type=annotations.JSON),
        ChannelSpec("validation_annotation", content_types=(annotations.JSON,),
                    default_content_type=annotations.JSON),
    )
    metrics = (MetricDefinition("validation:mAP", MAP_REGEX, "Maximize"),)

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.object_detection.predictor import ObjectDetectionPredictor

        return ObjectDetectionPredictor(Path(model_dir))


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp
        self.settings = settings_for(hp)

    def read(self, name: str) -> Samples:
        hp = self.hp
        samples = annotations.read_channel(self.ctx.channels, name, size=hp["image_shape"],
                                           num_classes=hp["num_classes"], label_width=hp["label_width"])
        assert samples is not None  # both channels are required
        return samples

    def run(self) -> None:
        started = time.perf_counter()
        train, validation = self.read("train"), self.read("validation")
        self.ctx.print(f"Read {len(train)} training and {len(validation)} validation images "
                       f"({sum(len(b) for b in train.boxes)} objects) in {time.perf_counter() - started:.3f} s.")
        with torch_threads(len(train) >= PARALLEL_IMAGES):
            self.fit(train, validation)

    def fit(self, train: Samples, validation: Samples) -> None:
        import torch

        from sagelab.algorithms.object_detection import network as net

        ctx, hp = self.ctx, self.hp
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        model = net.SSD(self.settings)
        self.freeze(model)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = self.optimizer(trainable)
        targets = [net.match(torch.as_tensor(b), model.anchors, hp["overlap_threshold"]) for b in train.boxes]
        flipped = [net.match(torch.as_tensor(_flip(b)), model.anchors, hp["overlap_threshold"])
                   for b in train.boxes]
        best: tuple[float, dict[str, Any], int] | None = None
        waited = 0
        batch = hp["mini_batch_size"]
        for epoch in range(hp["epochs"]):
            if epoch in hp["lr_scheduler_step"]:
                for group in optimizer.param_groups:
                    group["lr"] *= hp["lr_scheduler_factor"]
            model.train()
            order = torch.randperm(len(train), generator=generator)
            flips = torch.rand(len(train), generator=generator) < 0.5
            totals = np.zeros(2)
            for start in range(0, len(order), batch):
                rows = order[start:start + batch]
                images = net.to_tensor(train.images[rows.numpy()])
                flip = flips[rows]
                images[flip] = images[flip].flip(-1)
                labels = torch.stack([(flipped if f else targets)[int(i)][0] for i, f in zip(rows, flip, strict=True)])
                goals = torch.stack([(flipped if f else targets)[int(i)][1] for i, f in zip(rows, flip, strict=True)])
                logits, offsets = model(images)
                cls, box = net.loss(logits, offsets, labels, goals)
                optimizer.zero_grad()
                (cls + box).backward()
                optimizer.step()
                totals += np.array([float(cls.detach()), float(box.detach())]) * len(rows)
            cross_entropy, smooth_l1 = totals / len(order)
            if not (math.isfinite(cross_entropy) and math.isfinite(smooth_l1)):
                raise DataError(f"Training diverged in epoch {epoch} (cross_entropy {cross_entropy}, smooth_l1 "
                                f"{smooth_l1}): lower learning_rate.")
            onep.quality_metric(ctx, f"epoch={epoch}, train", "cross_entropy", cross_entropy)
            onep.quality_metric(ctx, f"epoch={epoch}, train", "smooth_l1", smooth_l1)
            score = self.evaluate(model, validation)
            onep.quality_metric(ctx, f"epoch={epoch}, validation", "mAP", score, "score")
            onep.progress_metric(ctx, epoch + 1, hp["epochs"])
            if best is None or score > best[0] * (1 + hp["early_stopping_tolerance"]) and score > best[0]:
                best, waited = (score, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch), 0
            else:
                waited += 1
                if hp["early_stopping"] and epoch + 1 >= hp["early_stopping_min_epochs"] \
                        and waited >= hp["early_stopping_patience"]:
                    ctx.print(f"Early stopping after epoch {epoch}: validation mAP has not improved on "
                              f"{best[0]:.6f} (epoch {best[2]}) for {waited} epochs.")
                    break
        assert best is not None
        model.load_state_dict(best[1])
        onep.quality_metric(ctx, "validation", "mAP", best[0], "score")
        net.save(model, ctx.model_dir, {"trained_epochs": best[2] + 1})

    def evaluate(self, model: Any, samples: Samples) -> float:
        import torch

        from sagelab.algorithms.object_detection import network as net

        model.eval()
        found: list[list[list[float]]] = []
        with torch.no_grad():
            for start in range(0, len(samples), 64):
                logits, offsets = model(net.to_tensor(samples.images[start:start + 64]))
                found += net.detect(logits, offsets, model.anchors, self.hp["nms_threshold"])
        return mean_average_precision(found, samples.boxes, self.hp["num_classes"], self.hp["overlap_threshold"])

    def freeze(self, model: Any) -> None:
        pattern = self.hp["freeze_layer_pattern"]
        if not pattern:
            return
        frozen = [name for name, p in model.base_parameters() if re.match(pattern, name)]
        for name, p in model.base_parameters():
            if name in frozen:
                p.requires_grad_(False)
        self.ctx.print(f"freeze_layer_pattern {pattern!r} froze {len(frozen)} base-network parameters"
                       + (f" ({', '.join(frozen[:6])}{', ...' if len(frozen) > 6 else ''})." if frozen else "."))

    def optimizer(self, parameters: Any) -> Any:
        import torch

        hp = self.hp
        rate = hp["learning_rate"]
        if hp["optimizer"] == "sgd":
            return torch.optim.SGD(parameters, lr=rate, momentum=hp["momentum"], weight_decay=hp["weight_decay"])
        if hp["optimizer"] == "rmsprop":
            return torch.optim.RMSprop(parameters, lr=rate, weight_decay=hp["weight_decay"])
        if hp["optimizer"] == "adam":
            return torch.optim.Adam(parameters, lr=rate)
        return torch.optim.Adadelta(parameters, lr=rate)


def _flip(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    out[:, 1], out[:, 3] = 1.0 - boxes[:, 3], 1.0 - boxes[:, 1]
    return out
