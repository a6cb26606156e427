"""What every stage of the demo shares: names, images, and waiting for SageMaker jobs with progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BUCKET = "sagelab-demo"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LINEAR_LEARNER_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
FINISHED = ("Completed", "Failed", "Stopped")


def write_csv(path: Path, rows: np.ndarray) -> None:
    np.savetxt(path, rows, delimiter=",", fmt="%.10g")


def csv_rows(rows: np.ndarray) -> str:
    return "\n".join(",".join(f"{v:.10g}" for v in row) for row in rows) + "\n"


def wait_for(names: list[str], describe: Callable[[str], dict], status_of: Callable[[dict], str], out,
             detail: Callable[[dict], str] = lambda desc: "") -> dict[str, dict]:
    """Poll until every named job has finished, showing one progress line that rewrites itself."""
    started = time.monotonic()
    final: dict[str, dict] = {}
    while len(final) < len(names):
        parts = []
        for name in names:
            desc = final.get(name) or describe(name)
            if status_of(desc) in FINISHED:
                final[name] = desc
            parts.append(f"{name}: {status_of(desc)}{detail(desc)}")
        out.write(f"\r  [{time.monotonic() - started:5.1f}s] " + "   ".join(parts) + "   ")
        out.flush()
        if len(final) < len(names):
            time.sleep(0.5)
    out.write("\n")
    return final
