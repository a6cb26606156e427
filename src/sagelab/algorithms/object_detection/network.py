"""The SSD detector (Liu et al., 2016) in plain PyTorch: a base network's feature maps at several scales, each
with a 3x3 convolution predicting, for every default box, class scores (background first) and four box offsets.

- vgg-16: VGG-16's thirteen 3x3 convolutions (named conv1_1 .. conv5_3, as MXNet's symbol names them, so that
  `freeze_layer_pattern` examples such as `^(conv1_|conv2_).*` apply), with batch normalisation after each since
  no pretrained weights exist to start from; pool5 3x3 stride 1, fc6 as a 3x3 convolution of dilation 6 and fc7
  as a 1x1 one. The maps are conv4_3 (stride 8) and fc7 (stride 16).
- resnet-50: `vision.resnet`'s ResNet-50; the maps are its last three stages (strides 8, 16, 32).
Extra layers (1x1 then 3x3 stride 2) add smaller maps until a map is 1x1 or there are six. Widths scale with
`base_width` (64 = the published networks).

Default boxes: on map k of m, scale s_k = 0.2 + 0.7 (k / (m - 1)), aspect ratios 1, 2 and 1/2, plus a square box
of scale sqrt(s_k s_(k+1)). Training matches each object to its best default box and every default box to the
object it overlaps by at least `overlap_threshold`; the loss is smooth L1 on the matched boxes' offsets (centre
/ 0.1, log size / 0.2) plus cross-entropy with hard negative mining (three negatives per positive), each divided
by the number of matches. Inference decodes the boxes, and keeps per class the boxes of score >= 0.01 that no
higher-scoring box of that class overlaps by more than `nms_threshold` (greedy NMS, written here: torchvision
cannot be installed beside the pinned torch).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sagelab.algorithms import torch_artifact

FORMAT = "sagelab-object-detection-ssd-1"
VARIANCES = (0.1, 0.2)
NEGATIVES_PER_POSITIVE = 3
SCORE_THRESHOLD, TOP_K_PER_CLASS, MAX_DETECTIONS = 0.01, 200, 100
MAX_MAPS = 6


def _conv(inputs: int, outputs: int, kernel: int = 3, **kwargs: Any) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, kernel, padding=kwargs.pop("padding", kernel // 2),
                                   bias=False, **kwargs),
                         nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class VGG16(nn.Module):
    STAGES = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))

    def __init__(self, width: int):
        super().__init__()
        channels, self.names = 3, []
        for stage, count in self.STAGES:
            outputs = width * 2 ** min(stage - 1, 3)
            for i in range(1, count + 1):
                name = f"conv{stage}_{i}"
                self.add_module(name, _conv(channels, outputs))
                self.names.append(name)
                channels = outputs
        fc = width * 16
        self.fc6 = _conv(channels, fc, 3, padding=6, dilation=6)
        self.fc7 = _conv(fc, fc, 1)
        self.map_channels = (width * 8, fc)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for name in self.names:
            x = getattr(self, name)(x)
            if name.endswith("_2") and name[4] in "12" or name.endswith("_3") and name[4] == "3":
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            elif name == "conv4_3":
                maps.append(x)
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = F.max_pool2d(x, 3, 1, 1)
        maps.append(self.fc7(self.fc6(x)))
        return maps


class ResNet50(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        from sagelab.algorithms.vision.resnet import ResNet

        self.net = ResNet(50, base_width=width)
        self.map_channels = self.net.stage_channels[1:]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(x)[1:]


def map_sizes(base: nn.Module, image_shape: int) -> list[int]:
    with torch.no_grad():
        was = base.training
        base.eval()
        sizes = [m.shape[-1] for m in base.features(torch.zeros(1, 3, image_shape, image_shape))]
        base.train(was)
    size = sizes[-1]
    while size > 1 and len(sizes) < MAX_MAPS:
        size = (size - 1) // 2 + 1
        sizes.append(size)
    return sizes


def default_boxes(sizes: list[int]) -> torch.Tensor:
    """(anchors, 4) centre-size boxes, normalised: for each map, row by row, each location's 4 boxes."""
    m = len(sizes)
    scales = [0.2 + 0.7 * k / max(m - 1, 1) for k in range(m)] + [1.0]
    out = []
    for k, size in enumerate(sizes):
        s, extra = scales[k], math.sqrt(scales[k] * scales[k + 1])
        shapes = [(s, s), (s * math.sqrt(2), s / math.sqrt(2)), (s / math.sqrt(2), s * math.sqrt(2)), (extra, extra)]
        centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        cy, cx = torch.meshgrid(centres, centres, indexing="ij")
        per = [torch.stack([cx, cy, torch.full_like(cx, w), torch.full_like(cx, h)], dim=-1) for w, h in shapes]
        out.append(torch.stack(per, dim=2).reshape(-1, 4))
    return torch.cat(out).clamp(0.0, 1.0)


BOXES_PER_LOCATION = 4


class SSD(nn.Module):
    def __init__(self, settings: dict[str, Any]):
        super().__init__()
        self.settings = settings
        width, classes = settings["base_width"], settings["num_classes"] + 1
        self.base = VGG16(width) if settings["base_network"] == "vgg-16" else ResNet50(width)
        sizes = map_sizes(self.base, settings["image_shape"])
        channels = list(self.base.map_channels)
        extras = []
        previous = channels[-1]
        for i in range(len(sizes) - len(channels)):
            outputs = width * (8 if i == 0 else 4)
            extras.append(nn.Sequential(_conv(previous, outputs // 2, 1), _conv(outputs // 2, outputs, 3, stride=2)))
            channels.append(outputs)
            previous = outputs
        self.extras = nn.ModuleList(extras)
        self.classes = classes
        self.class_heads = nn.ModuleList(nn.Conv2d(c, BOXES_PER_LOCATION * classes, 3, padding=1) for c in channels)
        self.box_heads = nn.ModuleList(nn.Conv2d(c, BOXES_PER_LOCATION * 4, 3, padding=1) for c in channels)
        self.register_buffer("anchors", default_boxes(sizes), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits (n, anchors, classes), box offsets (n, anchors, 4))."""
        maps = self.base.features(x)
        y = maps[-1]
        for extra in self.extras:
            y = extra(y)
            maps.append(y)
        logits, offsets = [], []
        for fmap, cls, box in zip(maps, self.class_heads, self.box_heads, strict=True):
            n = fmap.shape[0]
            logits.append(cls(fmap).permute(0, 2, 3, 1).reshape(n, -1, self.classes))
            offsets.append(box(fmap).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(logits, 1), torch.cat(offsets, 1)

    def base_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.base.named_parameters())


# -- boxes ------------------------------------------------------------------------------------------------------


def corners(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of corner boxes a (n, 4) and b (m, 4): (n, m)."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def encode(matched: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    centre = ((matched[:, :2] + matched[:, 2:]) / 2 - anchors[:, :2]) / (anchors[:, 2:] * VARIANCES[0])
    size = torch.log((matched[:, 2:] - matched[:, :2]).clamp(min=1e-6) / anchors[:, 2:]) / VARIANCES[1]
    return torch.cat([centre, size], 1)


def decode(offsets: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    centre = anchors[..., :2] + offsets[..., :2] * VARIANCES[0] * anchors[..., 2:]
    size = anchors[..., 2:] * torch.exp(offsets[..., 2:] * VARIANCES[1])
    return corners(torch.cat([centre, size], -1))


def match(boxes: torch.Tensor, anchors: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """For one image's objects (k, 5: class, corners): each default box's target class (0 = background) and
    encoded offsets."""
    if boxes.shape[0] == 0:
        return torch.zeros(len(anchors), dtype=torch.long), torch.zeros(len(anchors), 4)
    overlaps = iou(boxes[:, 1:], corners(anchors))  # (k, anchors)
    best_object, which = overlaps.max(0)
    best_anchor = overlaps.argmax(1)
    # every object keeps its best default box, whatever the threshold
    which[best_anchor] = torch.arange(len(boxes))
    best_object[best_anchor] = 1.0
    labels = boxes[which, 0].long() + 1
    labels[best_object < threshold] = 0
    return labels, encode(boxes[which, 1:], anchors)


def loss(logits: torch.Tensor, offsets: torch.Tensor, labels: torch.Tensor,
         targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy with hard negative mining, smooth L1), each per matched default box."""
    positive = labels > 0
    matches = positive.sum().clamp(min=1).float()
    box = F.smooth_l1_loss(offsets[positive], targets[positive], reduction="sum") / matches
    per_anchor = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                 reduction="none").reshape(labels.shape)
    hardness = per_anchor.detach().clone()
    hardness[positive] = -1.0
    rank = hardness.argsort(1, descending=True).argsort(1)
    negatives = rank < (NEGATIVES_PER_POSITIVE * positive.sum(1, keepdim=True)).clamp(max=labels.shape[1] - 1)
    cls = per_anchor[positive | negatives].sum() / matches
    return cls, box


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first."""
    order = scores.argsort(descending=True)
    overlaps = (iou(boxes[order], boxes[order]) > threshold).tolist()
    suppressed = [False] * len(order)
    keep = []
    for i, row in enumerate(overlaps):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed = [s or o for s, o in zip(suppressed, row, strict=True)]
    return order[torch.tensor(keep, dtype=torch.long)]


def detect(logits: torch.Tensor, offsets: torch.Tensor, anchors: torch.Tensor,
           nms_threshold: float) -> list[list[list[float]]]:
    """Per image: [[class_id, score, xmin, ymin, xmax, ymax], ...], highest score first."""
    probabilities = logits.softmax(-1)
    boxes = decode(offsets, anchors).clamp(0.0, 1.0)
    out = []
    for p, b in zip(probabilities, boxes, strict=True):
        found = []
        for c in range(1, p.shape[1]):
            scores = p[:, c]
            chosen = (scores >= SCORE_THRESHOLD).nonzero().flatten()
            if not chosen.numel():
                continue
            chosen = chosen[scores[chosen].argsort(descending=True)[:TOP_K_PER_CLASS]]
            for i in nms(b[chosen], scores[chosen], nms_threshold).tolist():
                j = int(chosen[i])
                found.append([float(c - 1), float(scores[j]), *map(float, b[j].tolist())])
        found.sort(key=lambda row: -row[1])
        out.append(found[:MAX_DETECTIONS])
    return out


def to_tensor(images: Any) -> torch.Tensor:
    """uint8 (n, h, w, 3) -> float (n, 3, h, w) centred around 0."""
    x = torch.tensor(images).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def save(net: SSD, model_dir: Path, extra: dict[str, Any]) -> None:
    torch_artifact.save(model_dir, net.state_dict(), {**net.settings, **extra}, model_format=FORMAT)


def load(model_dir: Path) -> SSD:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="Object Detection")
    net = SSD(settings)
    net.load_state_dict(state)
    net.eval()
    return net
