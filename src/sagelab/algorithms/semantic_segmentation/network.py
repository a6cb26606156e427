"""The segmentation networks, in plain PyTorch: a dilated ResNet encoder and one of three decoders.

Encoder: `vision.resnet.ResNet` (50 or 101 layers) with its last two stages dilated instead of strided, as the
GluonCV models SageMaker's algorithm is built on do: stage 3 runs at stride 8 with dilation 2, stage 4 at
stride 8 with dilation 4, so the decoder sees a map 1/8 of the input's side rather than 1/32 (a 240-pixel crop
gives a 30x30 map, not 8x8). The dilation is applied here, to a ResNet built by `vision.resnet` unchanged: the
strided 3x3 convolutions and 1x1 shortcuts of those stages get stride 1, and their 3x3 convolutions the
dilation (and the padding that keeps the size).

Decoders (widths as in the papers for the 2048-channel ResNet-50/101 output, scaled with `_sagelab_base_width`):
- fcn: a 3x3 convolution to C/4 channels, batch norm, ReLU, dropout 0.1, a 1x1 convolution to the classes;
- psp: the pyramid pooling module: average pooling to 1x1, 2x2, 3x3 and 6x6 bins, each reduced to C/4
  channels and upsampled, concatenated with the map, then a 3x3 convolution to C/4, dropout 0.1, classes;
- deeplab: ASPP (DeepLab V3): a 1x1 convolution, three 3x3 atrous convolutions (rates 12, 24, 36) and an
  image-pooling branch, each to C/8 channels, concatenated, projected (1x1, dropout 0.5), a 3x3 convolution,
  classes.
The class scores are upsampled bilinearly to the input's size. GluonCV's auxiliary FCN head on stage 3 (a
training-only loss) is not built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sagelab.algorithms import torch_artifact
from sagelab.algorithms.torch_artifact import MODEL_JSON, MODEL_PT
from sagelab.algorithms.vision.resnet import ResNet

FORMAT = "sagelab-semantic-segmentation-1"
#: ImageNet statistics the backbone's inputs are normalised with, as GluonCV's transforms do.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _dilate(stage: nn.Sequential, dilation: int) -> None:
    """Turn a strided ResNet stage into a dilated one that keeps its input's resolution."""
    for index, block in enumerate(stage):
        rate = max(1, dilation // 2) if index == 0 else dilation
        for module in block.modules():
            if isinstance(module, nn.Conv2d):
                module.stride = (1, 1)
                if module.kernel_size == (3, 3):
                    module.dilation, module.padding = (rate, rate), (rate, rate)


def _conv_bn_relu(inputs: int, outputs: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(inputs, outputs, kernel, padding=padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class FCNHead(nn.Module):
    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.block = nn.Sequential(_conv_bn_relu(channels, channels // 4, 3), nn.Dropout(0.1),
                                   nn.Conv2d(channels // 4, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class PSPHead(nn.Module):
    BINS = (1, 2, 3, 6)

    def __init__(self, channels: int, classes: int):
        super().__init__()
        reduced = channels // 4
        self.branches = nn.ModuleList(_conv_bn_relu(channels, reduced) for _ in self.BINS)
        self.block = nn.Sequential(_conv_bn_relu(channels + reduced * len(self.BINS), reduced, 3), nn.Dropout(0.1),
                                   nn.Conv2d(reduced, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [F.interpolate(branch(F.adaptive_avg_pool2d(x, bins)), size=size, mode="bilinear",
                                align_corners=False) for bins, branch in zip(self.BINS, self.branches, strict=True)]
        return self.block(torch.cat([x, *pooled], dim=1))


class ASPPHead(nn.Module):
    RATES = (12, 24, 36)

    def __init__(self, channels: int, classes: int):
        super().__init__()
        width = channels // 8
        self.branches = nn.ModuleList([_conv_bn_relu(channels, width),
                                       *(_conv_bn_relu(channels, width, 3, rate) for rate in self.RATES)])
        self.pooling = _conv_bn_relu(channels, width)
        self.project = nn.Sequential(_conv_bn_relu(width * (len(self.RATES) + 2), width), nn.Dropout(0.5))
        self.block = nn.Sequential(_conv_bn_relu(width, width, 3), nn.Dropout(0.1), nn.Conv2d(width, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The image-pooling branch's 1x1 map is spread back over the whole map.
        pooled = self.pooling(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, *x.shape[2:])
        joined = torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1)
        return self.block(self.project(joined))


HEADS = {"fcn": FCNHead, "psp": PSPHead, "deeplab": ASPPHead}


class SegmentationNet(nn.Module):
    def __init__(self, settings: dict[str, Any]):
        super().__init__()
        self.settings = settings
        depth = int(settings["backbone"].split("-")[1])
        self.backbone = ResNet(depth, base_width=settings["base_width"])
        _dilate(self.backbone.stages[2], 2)
        _dilate(self.backbone.stages[3], 4)
        self.head = HEADS[settings["algorithm"]](self.backbone.stage_channels[-1], settings["num_classes"])
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8-valued images (n, 3, h, w) as floats 0..255 -> class scores (n, classes, h, w)."""
        x = (images / 255.0 - self.mean) / self.std
        scores = self.head(self.backbone.features(x)[-1])
        return F.interpolate(scores, size=images.shape[2:], mode="bilinear", align_corners=False)


def batch(images: list[Any]) -> torch.Tensor:
    """Same-sized uint8 (h, w, 3) arrays -> one float tensor (n, 3, h, w)."""
    import numpy as np

    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()


def save(net: SegmentationNet, model_dir: Path, extra: dict[str, Any]) -> None:
    torch_artifact.save(model_dir, net.state_dict(), {**net.settings, **extra}, model_format=FORMAT)


#: what must agree between a model given in the `model` channel and the job that continues its training
ARCHITECTURE = ("algorithm", "backbone", "base_width", "num_classes", "crop_size")


def read_artifact(files: list[Path], where: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(settings, state_dict) of a trained model given as its model.tar.gz or as model.json and model.pt; the
    archive's two members are read in memory, nothing is extracted."""
    import io
    import tarfile

    found: dict[str, bytes] = {}
    for path in files:
        head, _, rest = path.name.partition("-")
        name = rest if head.isdigit() and rest else path.name  # channel files are named <index>-<object name>
        if name in (MODEL_JSON, MODEL_PT):
            found[name] = path.read_bytes()
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in (MODEL_JSON, MODEL_PT):
                        extracted = archive.extractfile(member)
                        if extracted is not None:
                            found[base] = extracted.read()
    if set(found) != {MODEL_JSON, MODEL_PT}:
        raise ValueError(f"{where}: no Semantic Segmentation model found: expected the model.tar.gz of a "
                         f"semantic-segmentation training job (holding {MODEL_JSON} and {MODEL_PT}).")
    try:
        settings = json.loads(found[MODEL_JSON])
        if settings.pop("format", None) != FORMAT:
            raise ValueError
        state = torch.load(io.BytesIO(found[MODEL_PT]), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever is wrong, the file is not one of our models
        raise ValueError(f"{where}: {MODEL_JSON} / {MODEL_PT} are not a {FORMAT} model.") from None
    return settings, state


def load(model_dir: Path) -> SegmentationNet:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="Semantic Segmentation")
    net = SegmentationNet(settings)
    net.load_state_dict(state)
    net.eval()
    return net
