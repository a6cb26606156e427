"""Serving a LightGBM model: the JumpStart tabular contract (`jumpstart.tabular.TabularPredictor`: CSV rows in,
JSON out) over the `lightgbm.Booster` saved in `lightgbm-model.txt`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sagelab.algorithms.jumpstart import tabular

MODEL_FILE = "lightgbm-model.txt"
FORMAT = "sagelab-lightgbm/1"


class LightGBMPredictor(tabular.TabularPredictor):
    def __init__(self, model_dir: Path):
        import lightgbm as lgb

        super().__init__(tabular.load_info(model_dir, FORMAT))
        self.booster = lgb.Booster(model_file=str(tabular.artifact_file(model_dir, MODEL_FILE)))

    def scores(self, x: np.ndarray) -> np.ndarray:
        predictions = np.asarray(self.booster.predict(x, num_threads=self.threads))
        if self.task == "binary":
            return np.column_stack([1.0 - predictions, predictions])
        return predictions
