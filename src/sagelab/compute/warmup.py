"""What a stand-by job process does before it is given a job: use the libraries jobs use, once, on
small data, so the first real job does not pay their first-use costs (thread pools, lazy initialisation,
heap growth). Nothing here is kept; only the process's state is warmer afterwards.
"""

from __future__ import annotations

import io
import os

#: Heap the stand-by process faults in and frees (it stays in the process: see `_tune_allocator`).
HEAP_BYTES = 128 << 20


def warm_libraries() -> None:
    import numpy as np
    import pyarrow.csv as pacsv
    import xgboost as xgb

    heap = np.ones(HEAP_BYTES // 8)
    del heap
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(2000, 8)).astype(np.float32)
    text = "\n".join(",".join(f"{v:.4g}" for v in row) for row in rows).encode()
    pacsv.read_csv(io.BytesIO(text), read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    matrix = xgb.DMatrix(rows[:, 1:], label=rows[:, 0] > 0, nthread=os.cpu_count() or 1)
    xgb.train({"tree_method": "hist", "objective": "binary:logistic", "nthread": os.cpu_count() or 1,
               "max_depth": 3}, matrix, num_boost_round=2, evals=[(matrix, "train")], verbose_eval=False)
