"""ResNet (He et al., 2015) in PyTorch, the backbone of the image algorithms: `num_layers` 18, 34, 50, 101, 152,
200 as image classification documents them, plus smaller depths (the 6n+2 CIFAR-style nets) for small images.

`ResNet.features(x)` returns the feature maps of the four stages (strides 4, 8, 16, 32 for the ImageNet stem,
1, 2, 4 for the small stem) so detection and segmentation heads can tap them; `ResNet(x)` adds global pooling
and the classifier. torchvision cannot be installed beside the pinned torch here (reference/dependencies.md), so
the blocks are written out.
"""

from __future__ import annotations

import torch
from torch import nn

#: num_layers -> (block, blocks per stage) for the ImageNet-style nets
IMAGENET_DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3)),
                   200: ("bottleneck", (3, 24, 36, 3))}
#: depths of the small-image (CIFAR) nets: 6n + 2 with basic blocks in three stages
SMALL_DEPTHS = (20, 32, 44, 56, 110)
SUPPORTED_DEPTHS = tuple(sorted((*IMAGENET_DEPTHS, *SMALL_DEPTHS)))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inputs: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = _shortcut(inputs, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int):
        super().__init__()
        outputs = width * self.expansion
        self.conv1 = nn.Conv2d(inputs, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outputs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outputs)
        self.shortcut = _shortcut(inputs, outputs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(inputs: int, outputs: int, stride: int) -> nn.Module:
    if stride == 1 and inputs == outputs:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))


class ResNet(nn.Module):
    def __init__(self, num_layers: int, num_classes: int = 0, *, base_width: int = 64):
        super().__init__()
        if num_layers in IMAGENET_DEPTHS:
            kind, counts = IMAGENET_DEPTHS[num_layers]
            widths = [base_width * 2 ** i for i in range(4)]
            self.stem = nn.Sequential(nn.Conv2d(3, base_width, 7, 2, 3, bias=False), nn.BatchNorm2d(base_width),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
            strides = (1, 2, 2, 2)
        elif num_layers in SMALL_DEPTHS:
            kind, counts = "basic", ((num_layers - 2) // 6,) * 3
            widths = [base_width // 4 * 2 ** i for i in range(3)]
            self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                      nn.ReLU(inplace=True))
            strides = (1, 2, 2)
        else:
            raise ValueError(f"num_layers {num_layers} is not a ResNet depth; expected one of {SUPPORTED_DEPTHS}")
        block = BasicBlock if kind == "basic" else Bottleneck
        channels = self.stem[0].out_channels
        stages = []
        for width, count, stride in zip(widths, counts, strides, strict=True):
            layers = []
            for i in range(count):
                layers.append(block(channels, width, stride if i == 0 else 1))
                channels = width * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        #: channels of each stage's feature map, for heads that tap them
        self.stage_channels = tuple(w * block.expansion for w in widths)
        self.classifier = nn.Linear(channels, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x)[-1], 1), 1)
        return pooled if self.classifier is None else self.classifier(pooled)
