"""Serving a CatBoost model: the JumpStart tabular contract (`jumpstart.tabular.TabularPredictor`: CSV rows in,
JSON out) over the CatBoost model saved in `model.cbm`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.jumpstart import tabular

MODEL_FILE = "model.cbm"
FORMAT = "sagelab-catboost/1"


def feature_frame(x: np.ndarray, categorical: list[int]) -> Any:
    """Features as CatBoost wants them: categorical columns as integers (CatBoost refuses float categories)."""
    import pandas as pd

    frame = pd.DataFrame(x, columns=[f"feature_{i}" for i in range(x.shape[1])])
    for column in categorical:
        frame[f"feature_{column}"] = frame[f"feature_{column}"].fillna(-1).astype(np.int64).astype(str)
    return frame


class CatBoostPredictor(tabular.TabularPredictor):
    def __init__(self, model_dir: Path):
        from catboost import CatBoost

        super().__init__(tabular.load_info(model_dir, FORMAT))
        self.model = CatBoost()
        self.model.load_model(str(tabular.artifact_file(model_dir, MODEL_FILE)), format="cbm")

    def scores(self, x: np.ndarray) -> np.ndarray:
        from catboost import Pool

        pool = Pool(feature_frame(x, self.categorical), cat_features=self.categorical)
        kind = "RawFormulaVal" if self.task == tabular.REGRESSION else "Probability"
        return np.asarray(self.model.predict(pool, prediction_type=kind, thread_count=self.threads))
