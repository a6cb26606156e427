"""The first-party algorithms' model artifact: NumPy arrays in `model.npz` beside a `model.json` that names
the format and keeps the scalar settings.

Arrays are read with `allow_pickle=False`, so an artifact can hold nothing but numbers; the format string
(e.g. "sagelab-kmeans/1") keeps one algorithm from loading another's model by mistake.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NPZ = "model.npz"
MODEL_JSON = "model.json"


def write_artifact(model_dir: Path, model_format: str, arrays: Mapping[str, Any], meta: Mapping[str, Any], *,
                   default: Callable[[Any], Any] | None = None) -> None:
    """Write `arrays` and `meta` (plus the format) into `model_dir`; `default` serializes meta values json
    cannot (as `json.dumps` takes it)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    np.savez(model_dir / MODEL_NPZ, **arrays)
    document = {"format": model_format, **meta}
    (model_dir / MODEL_JSON).write_text(json.dumps(document, indent=2, sort_keys=True, default=default))


def read_artifact(model_dir: Path, model_format: str,
                  what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """-> (meta without the format, arrays) of the `what` model (e.g. "K-Means") in `model_dir`."""
    meta_path, npz_path = model_dir / MODEL_JSON, model_dir / MODEL_NPZ
    if not meta_path.is_file() or not npz_path.is_file():
        raise FileNotFoundError(f"{model_dir} holds no {what} model ({MODEL_JSON} and {MODEL_NPZ}).")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != model_format:
        raise ValueError(f"{meta_path} is not a {model_format} model (format {meta.get('format')!r}).")
    with np.load(npz_path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    meta.pop("format")
    return meta, arrays
