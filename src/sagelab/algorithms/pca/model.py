"""PCA's model and its artifact.

The artifact mirrors AWS's (a dict with `mean` only when subtract_mean, `v` and `s`, ordered from the smallest
singular value to the largest) as `model.npz` (NumPy arrays, read with allow_pickle=False) beside `model.json`.
`v` is feature_dim x num_components: column j is the component with singular value `s[j]`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NPZ = "model.npz"
MODEL_JSON = "model.json"
FORMAT = "sagelab-pca/1"


class PCAModel:
    def __init__(self, v: np.ndarray, s: np.ndarray, mean: np.ndarray | None, info: dict[str, Any] | None = None):
        self.v = np.ascontiguousarray(v, dtype=np.float32)
        self.s = np.asarray(s, dtype=np.float32)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.info = info or {}

    @property
    def feature_dim(self) -> int:
        return int(self.v.shape[0])

    @property
    def num_components(self) -> int:
        return int(self.v.shape[1])

    def project(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.mean is not None:
            x = x - self.mean
        return x @ self.v

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        arrays = {"v": self.v, "s": self.s}
        if self.mean is not None:
            arrays["mean"] = self.mean
        np.savez(model_dir / MODEL_NPZ, **arrays)
        meta = {"format": FORMAT, "feature_dim": self.feature_dim, "num_components": self.num_components,
                "subtract_mean": self.mean is not None, "component_order": "ascending singular value", **self.info}
        (model_dir / MODEL_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, model_dir: Path) -> PCAModel:
        meta_path, npz_path = model_dir / MODEL_JSON, model_dir / MODEL_NPZ
        if not meta_path.is_file() or not npz_path.is_file():
            raise FileNotFoundError(f"{model_dir} holds no PCA model ({MODEL_JSON} and {MODEL_NPZ}).")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a {FORMAT} model (format {meta.get('format')!r}).")
        with np.load(npz_path, allow_pickle=False) as arrays:
            v, s = arrays["v"], arrays["s"]
            mean = arrays["mean"] if "mean" in arrays.files else None
        if v.ndim != 2 or s.shape != (v.shape[1],) or (mean is not None and mean.shape != (v.shape[0],)):
            raise ValueError(f"{npz_path}: inconsistent shapes v {v.shape}, s {s.shape}"
                             + ("" if mean is None else f", mean {mean.shape}") + ".")
        skip = ("format", "feature_dim", "num_components", "subtract_mean", "component_order")
        return cls(v, s, mean, {k: val for k, val in meta.items() if k not in skip})


