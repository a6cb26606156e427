"""One host's worker of a distributed built-in XGBoost job (see `sagelab.algorithms.xgboost.distributed`):
`python -m sagelab.algorithms.xgboost.worker <spec.json>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sagelab.algorithms.base import Channel, TrainingContext
from sagelab.algorithms.xgboost.algorithm import XGBoostAlgorithm
from sagelab.compute.lifetime import die_with_parent


def main(spec_path: Path) -> int:
    import xgboost as xgb

    die_with_parent()
    spec = json.loads(spec_path.read_text())
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    channels = {name: Channel(name=name, content_type=c["content_type"], files=[Path(p) for p in c["files"]],
                              params=c["params"], keys=c["keys"]) for name, c in spec["channels"].items()}
    model_dir, output_dir = Path(spec["model_dir"]), Path(spec["output_dir"])
    model_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    hyperparameters = dict(spec["hyperparameters"])
    hyperparameters.setdefault("nthread", spec["nthread"])
    ctx = TrainingContext(hyperparameters=hyperparameters, channels=channels, model_dir=model_dir,
                          output_dir=output_dir, log=sys.stdout)
    try:
        with xgb.collective.CommunicatorContext(**spec["tracker"], dmlc_task_id=f"{spec['rank']:05d}"):
            XGBoostAlgorithm().train_here(ctx)
    except Exception as exc:  # noqa: BLE001 - reported to the job's process, which names the host
        failure = spec_path.with_name(f"{spec['host']}.failure.json")
        failure.write_text(json.dumps([type(exc).__name__, str(exc)]))
        print(f"sagelab: XGBoost worker {spec['host']} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
