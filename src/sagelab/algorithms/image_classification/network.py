"""Image classification's network (`vision.resnet.ResNet`), its input scaling, its augmentations and its
artifact: `model.pt` (a `state_dict`, loaded with `weights_only=True`) beside `model.json` (the settings)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagelab.algorithms import torch_artifact
from sagelab.algorithms.vision.resnet import ResNet

FORMAT = "sagelab-image-classification/1"


def build(settings: dict[str, Any]) -> ResNet:
    return ResNet(settings["num_layers"], settings["num_classes"])


def to_input(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (n, h, w, 3) -> float32 (n, 3, h, w) in [-1, 1]."""
    x = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(0, 3, 1, 2)
    return x / 127.5 - 1.0


def save(model: torch.nn.Module, model_dir: Path, settings: dict[str, Any]) -> None:
    torch_artifact.save(model_dir, model.state_dict(), settings, model_format=FORMAT)


def load(model_dir: Path) -> tuple[ResNet, dict[str, Any]]:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="image classification")
    model = build(settings)
    model.load_state_dict(state)
    model.eval()
    return model, settings


# ---------------------------------------------------------------------------------------------- augmentation


def augment(x: torch.Tensor, kind: str | None, generator: torch.Generator) -> torch.Tensor:
    """A batch (n, 3, h, w) in [-1, 1] augmented as `augmentation_type` says (IC-Hyperparameter):
    crop: a random crop (of the image padded by an eighth of its size) and a random horizontal flip;
    crop_color: also hue, saturation and lightness shifts drawn from [-36, 36], [-50, 50], [-50, 50];
    crop_color_transform: also a rotation of up to 10 degrees, a shear of up to 0.1 and an aspect change of
    up to 0.25."""
    if not kind:
        return x
    if kind == "crop_color_transform":
        x = _affine(x, generator)
    x = _crop_and_flip(x, generator)
    if kind in ("crop_color", "crop_color_transform"):
        x = _colour(x, generator)
    return x


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def _crop_and_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    pad_h, pad_w = max(1, h // 8), max(1, w // 8)
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    tops = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator).tolist()
    out = torch.stack([padded[i, :, t:t + h, s:s + w] for i, (t, s) in enumerate(zip(tops, lefts, strict=True))])
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def _colour(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    rgb = (x + 1.0) / 2.0
    # Hue: a rotation of the chroma plane (YIQ) by the drawn angle.
    angle = _uniform(n, -36, 36, generator) * math.pi / 180
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, rgb)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    i, q = yiq[:, 1] * cos - yiq[:, 2] * sin, yiq[:, 1] * sin + yiq[:, 2] * cos
    yiq = torch.stack([yiq[:, 0], i, q], dim=1)
    rgb = torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq)
    # Saturation: away from or towards the grey of the same luma, by the drawn percentage.
    saturation = 1.0 + _uniform(n, -50, 50, generator)[:, None, None, None] / 100.0
    grey = (rgb * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
    rgb = grey + (rgb - grey) * saturation
    # Lightness: the drawn shift on the 0..255 scale.
    rgb = rgb + _uniform(n, -50, 50, generator)[:, None, None, None] / 255.0
    return rgb.clamp(0.0, 1.0) * 2.0 - 1.0


def _affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    angle = _uniform(n, -10, 10, generator) * math.pi / 180
    shear = _uniform(n, -0.1, 0.1, generator)
    aspect = 1.0 + _uniform(n, -0.25, 0.25, generator)
    sx, sy = torch.sqrt(aspect), 1.0 / torch.sqrt(aspect)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos / sx, (-sin + shear) / sx
    theta[:, 1, 0], theta[:, 1, 1] = sin / sy, cos / sy
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
