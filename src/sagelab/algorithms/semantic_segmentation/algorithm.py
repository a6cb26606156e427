"""SageMaker's Semantic Segmentation (`semantic-segmentation` images): every pixel of an image gets a class,
learned from JPEG images and PNG masks with PyTorch; see `network` for the encoder and the three decoders, and
`data` for the channels, masks (255 ignored) and label maps.

How the documented hyperparameters map:
- algorithm fcn | psp | deeplab: the decoder; backbone resnet-50 | resnet-101: `vision.resnet`, dilated
  (output stride 8). use_pretrained_model defaults to True in SageMaker, but no ImageNet weights ship with
  sagelab and it never downloads any: True is refused when the job is created (ValidationException); pass
  False to train from scratch.
- _sagelab_base_width is a sagelab extension, not a SageMaker hyperparameter: the width of the ResNet's
  first stage (64, the default, is the standard network; 8 trains the same architecture 64 times cheaper,
  which tests and 2-core machines need).
- Training crops (GluonCV's augmentation): a random horizontal flip, the long side rescaled to base_size x a
  random 0.5..2.0 (bilinear for the image, nearest for the mask), padding to crop_size when smaller (mask
  padding ignored), a random crop_size square (crop_size rounded up to a multiple of 8).
- Validation: the short side rescaled to crop_size, the centre crop_size square; `validation:mIOU` is the
  mean over classes present in the masks or the predictions of intersection / union, and
  `validation:pixel_accuracy` the share of (not ignored) pixels classified right, over the whole channel.
- Loss: per-pixel cross-entropy, mask value 255 ignored. epochs, mini_batch_size, validation_mini_batch_size.
- learning_rate with lr_scheduler, per iteration over epochs x ceil(num_training_samples / mini_batch_size)
  iterations: poly (1 - t/T)^0.9, cosine 0.5 (1 + cos(pi t/T)), step x lr_scheduler_factor at each epoch in
  lr_scheduler_step.
- optimizer sgd (momentum, weight_decay), nag (Nesterov momentum, weight_decay), adam, adagrad, rmsprop
  (gamma1 the squared-gradient decay, gamma2 the momentum); as documented, momentum and weight_decay apply to
  sgd only (and nag, its Nesterov form).
- early_stopping on validation mIOU: after early_stopping_min_epochs, training stops when early_stopping_patience
  epochs in a row improve the best mIOU by less than early_stopping_tolerance (relative); the best epoch's
  weights are kept (without early stopping, the last epoch's).
- syncbn is accepted: one process on CPUs has no other devices to synchronise batch statistics with.
- Incremental training: a `model` channel (application/x-sagemaker-model) holding the model.tar.gz of an earlier
  semantic-segmentation job starts from its weights; its algorithm, backbone, _sagelab_base_width, crop_size
  and num_classes must be this job's, as documented.
- Seeded (torch generator and NumPy augmentation seeds 0): the same data and hyperparameters give the same
  model. Training uses every core from 4 million training pixels per epoch, one thread below (`torch_threads`).

Metrics (1P format): per epoch `#quality_metric: host=algo-1, epoch=3, train loss <loss>=0.41` and the
validation scores; at the end `#quality_metric: host=algo-1, validation mIOU <score>=0.73` and
`... validation pixel_accuracy <score>=0.95`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.semantic_segmentation.data import (
    IGNORE,
    IMAGE_TYPES,
    JSON,
    RECORDIO,
    LabelMap,
    Sample,
    read_label_maps,
    read_samples,
)
from sagelab.algorithms.semantic_segmentation.hyperparameters import SCHEMA
from sagelab.algorithms.torch_threads import torch_threads
from sagelab.algorithms.vision.records import resize

SEED = 0
#: training pixels per epoch from which torch uses every core (below: one thread, see torch_threads)
PARALLEL_PIXELS = 4_000_000
PNG = "image/png"
MODEL = "application/x-sagemaker-model"


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (*onep.progress_and_throughput_metrics(),
            MetricDefinition("train:loss", r"#quality_metric: host=\S+, epoch=\S+, train loss <loss>=(\S+)"),
            MetricDefinition("validation:mIOU", onep.quality_metric_regex("validation", "mIOU", "score"), "Maximize"),
            MetricDefinition("validation:pixel_accuracy",
                             onep.quality_metric_regex("validation", "pixel_accuracy", "score"), "Maximize"))


def settings_for(hp: dict[str, Any]) -> dict[str, Any]:
    """What the network and the predictor need: the architecture and the sizes."""
    return {"algorithm": hp["algorithm"], "backbone": hp["backbone"], "base_width": hp["_sagelab_base_width"],
            "num_classes": hp["num_classes"], "crop_size": 8 * math.ceil(hp["crop_size"] / 8),
            "base_size": hp["base_size"]}


class SemanticSegmentation:
    name = "semantic-segmentation"
    image_repositories = ("semantic-segmentation",)
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=(*IMAGE_TYPES, RECORDIO), default_content_type="image/jpeg"),
        ChannelSpec("validation", required=True, content_types=(*IMAGE_TYPES, RECORDIO),
                    default_content_type="image/jpeg"),
        ChannelSpec("train_annotation", content_types=(PNG,), default_content_type=PNG),
        ChannelSpec("validation_annotation", content_types=(PNG,), default_content_type=PNG),
        ChannelSpec("label_map", content_types=(JSON,), default_content_type=JSON),
        ChannelSpec("model", content_types=(MODEL,), default_content_type=MODEL),
    )
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.semantic_segmentation.predictor import SegmentationPredictor

        return SegmentationPredictor(Path(model_dir))


def training_crop(sample: Sample, crop: int, base: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """GluonCV's training transform: flip, rescale the long side to base x U(0.5, 2), pad, random crop."""
    image, mask = sample.image, sample.mask
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    h, w = mask.shape
    long_side = int(rng.integers(int(base * 0.5), int(base * 2.0) + 1))
    if h > w:
        nh, nw = long_side, max(1, round(w * long_side / h))
    else:
        nh, nw = max(1, round(h * long_side / w)), long_side
    image = resize(np.ascontiguousarray(image), nh, nw)
    mask = resize(np.ascontiguousarray(mask), nh, nw, nearest=True)
    if nh < crop or nw < crop:
        ph, pw = max(crop - nh, 0), max(crop - nw, 0)
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=IGNORE)
    top = int(rng.integers(0, mask.shape[0] - crop + 1))
    left = int(rng.integers(0, mask.shape[1] - crop + 1))
    return image[top:top + crop, left:left + crop], mask[top:top + crop, left:left + crop]


def validation_crop(sample: Sample, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """GluonCV's validation transform: the short side rescaled to crop, the centre square."""
    h, w = sample.mask.shape
    if w > h:
        nh, nw = crop, max(crop, round(w * crop / h))
    else:
        nh, nw = max(crop, round(h * crop / w)), crop
    image, mask = resize(sample.image, nh, nw), resize(sample.mask, nh, nw, nearest=True)
    top, left = (nh - crop) // 2, (nw - crop) // 2
    return image[top:top + crop, left:left + crop], mask[top:top + crop, left:left + crop]


class Confusion:
    """Per-class pixel counts over a channel: mIOU and pixel accuracy."""

    def __init__(self, classes: int):
        self.classes = classes
        self.matrix = np.zeros((classes, classes), dtype=np.int64)

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        keep = truth != IGNORE
        index = truth[keep].astype(np.int64) * self.classes + predicted[keep].astype(np.int64)
        self.matrix += np.bincount(index, minlength=self.classes ** 2).reshape(self.classes, self.classes)

    def scores(self) -> dict[str, float]:
        m = self.matrix
        intersection = np.diag(m).astype(np.float64)
        union = m.sum(0) + m.sum(1) - intersection
        present = union > 0
        miou = float((intersection[present] / union[present]).mean()) if present.any() else 0.0
        return {"mIOU": miou, "pixel_accuracy": float(intersection.sum() / max(m.sum(), 1))}


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp
        self.settings = settings_for(hp)

    def read(self, name: str, label_maps: dict[str, LabelMap]) -> list[Sample]:
        channel = self.ctx.channels.get(name)
        if channel is None:
            raise DataError(f"Channel '{name}' is required: the {name} images (with their masks in "
                            f"'{name}_annotation', or an augmented manifest).")
        return read_samples(channel, self.ctx.channels.get(f"{name}_annotation"), label_maps.get(name, LabelMap()),
                            self.hp["num_classes"])

    def run(self) -> None:
        ctx = self.ctx
        started = time.perf_counter()
        label_maps = read_label_maps(ctx.channels.get("label_map"))
        train, validation = self.read("train", label_maps), self.read("validation", label_maps)
        ctx.print(f"Read {len(train)} training and {len(validation)} validation images in "
                  f"{time.perf_counter() - started:.3f} s.")
        if len(train) != self.hp["num_training_samples"]:
            ctx.print(f"num_training_samples is {self.hp['num_training_samples']} but the train channel holds "
                      f"{len(train)} images; the learning-rate schedule follows num_training_samples.")
        crop = self.settings["crop_size"]
        with torch_threads(len(train) * crop * crop >= PARALLEL_PIXELS):
            self.fit(train, validation)

    def fit(self, train: list[Sample], validation: list[Sample]) -> None:
        import torch

        from sagelab.algorithms.semantic_segmentation import network as net

        ctx, hp, s = self.ctx, self.hp, self.settings
        torch.manual_seed(SEED)
        rng = np.random.default_rng(SEED)
        model = net.SegmentationNet(s)
        if "model" in ctx.channels:
            model.load_state_dict(self.starting_weights(ctx.channels["model"].files))
        optimizer = self.optimizer(model.parameters())
        batch_size = hp["mini_batch_size"]
        per_epoch = max(1, math.ceil(hp["num_training_samples"] / batch_size))
        total_iterations = hp["epochs"] * per_epoch
        held_out = [validation_crop(sample, s["crop_size"]) for sample in validation]
        best: tuple[float, dict[str, Any], int] | None = None
        waited, iteration, seen = 0, 0, 0
        throughput = onep.Throughput()
        for epoch in range(hp["epochs"]):
            model.train()
            order = rng.permutation(len(train))
            total, pixels = 0.0, 0
            for start in range(0, len(order), batch_size):
                chosen = order[start:start + batch_size]
                if len(chosen) == 1 < batch_size:
                    continue  # batch norm needs two images: a last lone one waits for the next epoch's order
                crops = [training_crop(train[i], s["crop_size"], s["base_size"], rng) for i in chosen]
                images = net.batch([c[0] for c in crops])
                masks = torch.from_numpy(np.stack([c[1] for c in crops]).astype(np.int64))
                for group in optimizer.param_groups:
                    group["lr"] = self.learning_rate(iteration, epoch, per_epoch, total_iterations)
                loss = torch.nn.functional.cross_entropy(model(images), masks, ignore_index=IGNORE)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                iteration += 1
                counted = int((masks != IGNORE).sum())
                if counted:
                    total += float(loss.detach()) * counted
                    pixels += counted
                seen += len(chosen)
            train_loss = total / max(pixels, 1)
            if not math.isfinite(train_loss):
                raise DataError(f"Training diverged in epoch {epoch} (loss {train_loss}): lower learning_rate.")
            onep.quality_metric(ctx, f"epoch={epoch}, train", "loss", train_loss)
            scores = self.evaluate(model, held_out)
            for metric, value in scores.items():
                onep.quality_metric(ctx, f"epoch={epoch}, validation", metric, value, "score")
            onep.progress_metric(ctx, epoch + 1, hp["epochs"])
            if not hp["early_stopping"]:
                continue
            if best is None or scores["mIOU"] > best[0] * (1 + hp["early_stopping_tolerance"]):
                best, waited = (scores["mIOU"], {k: v.detach().clone() for k, v in model.state_dict().items()},
                                epoch), 0
                continue
            waited += 1
            if epoch + 1 >= hp["early_stopping_min_epochs"] and waited >= hp["early_stopping_patience"]:
                ctx.print(f"Early stopping after epoch {epoch}: validation mIOU has not improved on {best[0]:.6f} "
                          f"(epoch {best[2]}) by more than {hp['early_stopping_tolerance']} (relative) for {waited} "
                          "epochs.")
                break
        throughput.report(ctx, seen)
        trained = epoch + 1
        if best is not None:
            model.load_state_dict(best[1])
            trained = best[2] + 1
        model.eval()
        for metric, value in self.evaluate(model, held_out).items():
            onep.quality_metric(ctx, "validation", metric, value, "score")
        net.save(model, ctx.model_dir, {"trained_epochs": trained})

    def starting_weights(self, files: list[Path]) -> dict[str, Any]:
        from sagelab.algorithms.semantic_segmentation import network as net

        try:
            settings, state = net.read_artifact(files, "Channel 'model'")
        except ValueError as exc:
            raise DataError(str(exc)) from None
        for key in net.ARCHITECTURE:
            if settings.get(key) != self.settings[key]:
                raise DataError(f"Channel 'model': the model was trained with {key}={settings.get(key)!r} but this job "
                                f"has {key}={self.settings[key]!r}; incremental training needs the same algorithm, "
                                "backbone, _sagelab_base_width, crop_size and num_classes.")
        self.ctx.print(f"Starting from the weights in channel 'model' ({settings.get('trained_epochs', '?')} epochs).")
        return state

    def evaluate(self, model: Any, held_out: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        import torch

        from sagelab.algorithms.semantic_segmentation.network import batch

        model.eval()
        confusion = Confusion(self.hp["num_classes"])
        size = self.hp["validation_mini_batch_size"]
        with torch.no_grad():
            for start in range(0, len(held_out), size):
                part = held_out[start:start + size]
                predicted = model(batch([p[0] for p in part])).argmax(1).numpy()
                confusion.add(predicted, np.stack([p[1] for p in part]))
        return confusion.scores()

    def learning_rate(self, iteration: int, epoch: int, per_epoch: int, total: int) -> float:
        hp = self.hp
        base, progress = hp["learning_rate"], min(iteration / max(total, 1), 1.0)
        if hp["lr_scheduler"] == "poly":
            return base * (1 - progress) ** 0.9
        if hp["lr_scheduler"] == "cosine":
            return base * 0.5 * (1 + math.cos(math.pi * progress))
        passed = sum(1 for step in hp["lr_scheduler_step"] if epoch >= step)
        return base * hp["lr_scheduler_factor"] ** passed

    def optimizer(self, parameters: Any) -> Any:
        import torch

        hp = self.hp
        lr, kind = hp["learning_rate"], hp["optimizer"]
        if kind in ("sgd", "nag"):
            return torch.optim.SGD(parameters, lr=lr, momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                                   nesterov=kind == "nag")
        if kind == "rmsprop":
            return torch.optim.RMSprop(parameters, lr=lr, alpha=hp["gamma1"], momentum=hp["gamma2"])
        return {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}[kind](parameters, lr=lr)
