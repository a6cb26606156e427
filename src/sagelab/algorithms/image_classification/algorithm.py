"""SageMaker's Image Classification (`image-classification` images): a ResNet (`vision.resnet`) trained from
scratch with PyTorch on RecordIO `.rec` files, on images listed by `.lst` files, or on an augmented manifest
(see `image_classification.inputs`).

How the documented hyperparameters map:
- num_layers: the ResNet depth (18..200 ImageNet-style, 20..110 small-image nets); num_classes its outputs.
- image_shape 'C,H,W' (C must be 3): the network's input; resize: the shortest side an image is scaled to first.
  Every image is then centre-cropped to H x W (scaled up first when smaller), for training, validation and
  inference alike. resize is optional for every format (AWS requires it for image content types): without it
  images are only scaled when smaller than H x W.
- augmentation_type crop / crop_color / crop_color_transform: random crop and flip; plus hue, saturation and
  lightness shifts; plus rotation, shear and aspect changes, in the documented ranges (`network.augment`).
- optimizer sgd (momentum, weight_decay), nag (Nesterov momentum), adam (beta_1, beta_2, eps), rmsprop (gamma as
  the squared-gradient decay, eps); learning_rate multiplied by lr_scheduler_factor after each epoch of
  lr_scheduler_step; mini_batch_size; epochs.
- multi_label 1: independent sigmoid outputs trained with binary cross-entropy (use_weighted_loss 1 weighs each
  class's positives by its negative/positive ratio); accuracy is then the fraction of correct labels.
- early_stopping (min_epochs, patience, tolerance): on validation accuracy; the model kept is the epoch with
  the best validation accuracy (the last epoch without a validation channel). checkpoint_frequency n also keeps
  every n-th epoch's parameters in the artifact (`model-epoch-NNNN.pt`).
- Not supported: use_pretrained_model 1 (refused when the job is created: no pretrained weights ship with
  sagelab and it never downloads) and incremental training from a `model` channel. precision_dtype float16 and
  kv_store are accepted; training runs in float32 on one host.
- num_training_samples is informational: the data decides; a mismatch is logged. Images are decoded once and
  held in memory as uint8 at H x W (150 KB an image at 224 x 224).
- Before each evaluation (and before saving), batch normalization's statistics are recomputed on up to 512
  training images: on small data sets the running averages lag far behind the weights.
- Seeded (torch generator 0): the same data and hyperparameters give the same model. Training uses every core
  when an epoch holds 20 million pixels or more, one thread below (`torch_threads`).

Metrics, in the MXNet log format the algorithm prints: `Epoch[3] Train-accuracy=0.91` and
`Epoch[3] Validation-accuracy=0.88` per epoch (`train:accuracy`, `validation:accuracy`, Maximize). With top_k (single
label) the lines `Epoch[3] Train-top_k_accuracy_5=...` and `Validation-top_k_accuracy_5=...` are printed too; AWS
documents no metric name for them, so none is declared (a job may add its own MetricDefinition).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.image_classification.hyperparameters import SCHEMA, parse_image_shape, parse_steps
from sagelab.algorithms.image_classification.inputs import IMAGE_TYPES, RECORDIO, Geometry, Images, Reader
from sagelab.algorithms.torch_threads import torch_threads

SEED = 0
#: pixels per epoch from which torch uses every core (below: one thread, see torch_threads)
PARALLEL_PIXELS = 20_000_000
#: training images that batch normalization's statistics are recomputed on before each evaluation
SETTLE_IMAGES = 512
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
LST = "text/plain"


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (MetricDefinition("train:accuracy", rf"Epoch\[\d+\] Train-accuracy={_NUMBER}", "Maximize"),
            MetricDefinition("validation:accuracy", rf"Epoch\[\d+\] Validation-accuracy={_NUMBER}", "Maximize"))


def settings_for(hp: dict[str, Any]) -> dict[str, Any]:
    _, height, width = parse_image_shape(hp["image_shape"])
    return {"num_layers": hp["num_layers"], "num_classes": hp["num_classes"], "height": height, "width": width,
            "resize": hp["resize"], "multi_label": bool(hp["multi_label"])}


_IMAGE_CHANNEL_TYPES = (RECORDIO, *IMAGE_TYPES)
_LST_TYPES = (LST, "application/x-image", "application/octet-stream")


class ImageClassification:
    name = "image-classification"
    image_repositories = ("image-classification",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=_IMAGE_CHANNEL_TYPES, default_content_type=RECORDIO),
                ChannelSpec("validation", content_types=_IMAGE_CHANNEL_TYPES, default_content_type=RECORDIO),
                ChannelSpec("train_lst", content_types=_LST_TYPES, default_content_type=LST),
                ChannelSpec("validation_lst", content_types=_LST_TYPES, default_content_type=LST))
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.image_classification.predictor import ImageClassificationPredictor

        return ImageClassificationPredictor(Path(model_dir))


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp
        self.settings = settings_for(hp)
        self.multi_label = self.settings["multi_label"]

    def run(self) -> None:
        ctx, hp = self.ctx, self.hp
        started = time.perf_counter()
        reader = Reader(Geometry.of(self.settings), hp["num_classes"], self.multi_label)
        train = reader.channel(ctx.channels, "train")
        assert train is not None
        validation = reader.channel(ctx.channels, "validation")
        ctx.print(f"Read {len(train)} training images{f' and {len(validation)} validation images' if validation else ''}"
                  f" in {time.perf_counter() - started:.3f} s.")
        if len(train) != hp["num_training_samples"]:
            ctx.print(f"num_training_samples is {hp['num_training_samples']} but the train channel holds "
                      f"{len(train)} images; training uses the images.")
        if hp["precision_dtype"] == "float16":
            ctx.print("precision_dtype float16: training runs in float32 (half precision is for GPUs).")
        pixels = len(train) * self.settings["height"] * self.settings["width"]
        with torch_threads(pixels >= PARALLEL_PIXELS):
            self.fit(train, validation)

    def fit(self, train: Images, validation: Images | None) -> None:
        import torch

        from sagelab.algorithms.image_classification import network as net

        ctx, hp = self.ctx, self.hp
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        model = net.build(self.settings)
        optimizer = self.optimizer(model.parameters())
        steps = parse_steps(hp["lr_scheduler_step"]) if hp["lr_scheduler_step"] else []
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=steps, gamma=hp["lr_scheduler_factor"])
        loss_fn = self.loss_function(train)
        labels = torch.from_numpy(train.labels)
        batch = hp["mini_batch_size"]
        best: tuple[float, dict[str, Any], int] | None = None
        waited = 0
        for epoch in range(hp["epochs"]):
            model.train()
            began = time.perf_counter()
            order = torch.randperm(len(train), generator=generator)
            total, outputs, targets = 0.0, [], []
            for start in range(0, len(order), batch):
                rows = order[start:start + batch]
                if len(rows) == 1 and len(order) > 1:
                    continue  # batch normalization needs two images in a batch
                x = net.augment(net.to_input(train.pixels[rows.numpy()]), hp["augmentation_type"], generator)
                y = labels[rows]
                logits = model(x)
                loss = loss_fn(logits, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
                outputs.append(logits.detach())
                targets.append(y)
            if not math.isfinite(total):
                raise DataError(f"Training diverged in epoch {epoch} (loss {total}): lower learning_rate.")
            scheduler.step()
            self.report(epoch, "Train", torch.cat(outputs), torch.cat(targets))
            ctx.print(f"Epoch[{epoch}] Time cost={time.perf_counter() - began:.3f}")
            if hp["checkpoint_frequency"] and (epoch + 1) % hp["checkpoint_frequency"] == 0:
                ctx.model_dir.mkdir(parents=True, exist_ok=True)
                torch.save(model.state_dict(), ctx.model_dir / f"model-epoch-{epoch + 1:04d}.pt")
            if validation is None:
                continue
            self.settle_batch_norm(model, train)
            accuracy = self.report(epoch, "Validation", *self.predict(model, validation))
            model.train()
            if best is None or _improved(accuracy, best[0], hp["early_stopping_tolerance"]):
                best, waited = (accuracy, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch), 0
            else:
                waited += 1
                if hp["early_stopping"] and epoch + 1 >= hp["early_stopping_min_epochs"] \
                        and waited >= hp["early_stopping_patience"]:
                    ctx.print(f"Early stopping after epoch {epoch}: validation accuracy has not improved on "
                              f"{best[0]:.6f} (epoch {best[2]}) for {waited} epochs.")
                    break
        if best is None:
            self.settle_batch_norm(model, train)
        else:
            model.load_state_dict(best[1])
            ctx.print(f"Keeping the parameters of epoch {best[2]} (best validation accuracy {best[0]:.6f}).")
        model.eval()
        net.save(model, ctx.model_dir, self.settings)

    def settle_batch_norm(self, model: Any, train: Images) -> None:
        """Batch normalization's running statistics, recomputed for the current weights on (up to
        SETTLE_IMAGES of) the training images: the running averages lag behind weights that still move fast,
        which on small data sets makes evaluation far worse than the network is."""
        import torch

        from sagelab.algorithms.image_classification import network as net

        layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [m.momentum for m in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the batches below
        model.train()
        count = min(len(train), SETTLE_IMAGES)
        with torch.no_grad():
            for start in range(0, count, self.hp["mini_batch_size"]):
                stop = min(start + self.hp["mini_batch_size"], count)
                if stop - start > 1:
                    model(net.to_input(train.pixels[start:stop]))
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum

    def predict(self, model: Any, images: Images) -> tuple[Any, Any]:
        import torch

        from sagelab.algorithms.image_classification import network as net

        model.eval()
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), 256):
                outputs.append(model(net.to_input(images.pixels[start:start + 256])))
        return torch.cat(outputs), torch.from_numpy(images.labels)

    def report(self, epoch: int, phase: str, logits: Any, targets: Any) -> float:
        import torch

        if self.multi_label:
            accuracy = float(((logits > 0).float() == targets).float().mean())
        else:
            accuracy = float((logits.argmax(1) == targets).float().mean())
        self.ctx.print(f"Epoch[{epoch}] {phase}-accuracy={accuracy:.6f}")
        k = self.hp["top_k"]
        if k and not self.multi_label:
            top = torch.topk(logits, min(k, logits.shape[1]), dim=1).indices
            top_accuracy = float((top == targets[:, None]).any(1).float().mean())
            self.ctx.print(f"Epoch[{epoch}] {phase}-top_k_accuracy_{k}={top_accuracy:.6f}")
        return accuracy

    def loss_function(self, train: Images) -> Any:
        import torch

        if not self.multi_label:
            return torch.nn.functional.cross_entropy
        weight = None
        if self.hp["use_weighted_loss"]:
            positives = torch.from_numpy(train.labels).sum(0)
            weight = (len(train) - positives) / positives.clamp(min=1.0)
        return lambda logits, y: torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=weight)

    def optimizer(self, parameters: Any) -> Any:
        import torch

        hp = self.hp
        lr = hp["learning_rate"]
        if hp["optimizer"] == "adam":
            return torch.optim.Adam(parameters, lr=lr, betas=(hp["beta_1"], hp["beta_2"]), eps=hp["eps"])
        if hp["optimizer"] == "rmsprop":
            return torch.optim.RMSprop(parameters, lr=lr, alpha=hp["gamma"], eps=hp["eps"])
        nesterov = hp["optimizer"] == "nag" and hp["momentum"] > 0
        return torch.optim.SGD(parameters, lr=lr, momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                               nesterov=nesterov)


def _improved(accuracy: float, best: float, tolerance: float) -> bool:
    if accuracy <= best:
        return False
    return best <= 0 or (accuracy - best) / best > tolerance
