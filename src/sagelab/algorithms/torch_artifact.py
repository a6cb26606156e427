"""The artifact of sagelab's PyTorch built-ins: `model.pt`, the network's `state_dict`, read back with
`torch.load(weights_only=True)` so that loading a model never runs code from it, and `model.json`, the
settings the network is rebuilt from, tagged with the algorithm's artifact `format`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

MODEL_PT, MODEL_JSON = "model.pt", "model.json"


def save(model_dir: Path, state_dict: dict[str, torch.Tensor], settings: dict[str, Any], *, model_format: str) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, model_dir / MODEL_PT)
    (model_dir / MODEL_JSON).write_text(json.dumps({"format": model_format, **settings}, indent=2, sort_keys=True))


def read(model_dir: Path, *, model_format: str, what: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(settings without the format tag, state_dict) of the model in `model_dir`; `what` names the algorithm in
    the errors."""
    meta_path, weights = model_dir / MODEL_JSON, model_dir / MODEL_PT
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{model_dir} holds no {what} model ({MODEL_JSON} and {MODEL_PT}).")
    settings = json.loads(meta_path.read_text())
    found = settings.pop("format", None)
    if found != model_format:
        raise ValueError(f"{meta_path} is not a {model_format} model (format {found!r}).")
    return settings, torch.load(weights, map_location="cpu", weights_only=True)
