"""Training-job overhead: XGBoost (hist, 100 rounds) on a 200,000 x 20 CSV, as a sagelab training job
and, in the same run, by calling xgboost directly on the same file. Prints the ratio job/direct last.

Run: .venv/bin/python benchmarks/training.py [--rows 200000] [--repeats 3]
The job time runs from CreateTrainingJob to the moment DescribeTrainingJob reports Completed (polled every
20 ms); the direct time reads the CSV with pyarrow and trains with xgboost.train in this process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import xgboost as xgb

from sagelab.embedded import ServerProcess

PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3}
ROUNDS = 100


def make_csv(path: Path, rows: int, features: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    logits = x[:, :5] @ rng.normal(size=5) + 0.5 * x[:, 5] * x[:, 6]
    y = (logits + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)
    np.savetxt(path, np.column_stack([y, x]), delimiter=",", fmt="%.6g")


def direct(path: Path) -> float:
    started = time.perf_counter()
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    data = np.column_stack([c.to_numpy().astype(np.float32) for c in table.columns])
    dtrain = xgb.DMatrix(data[:, 1:], label=data[:, 0])
    xgb.train(PARAMS, dtrain, num_boost_round=ROUNDS, evals=[(dtrain, "train")], verbose_eval=False)
    return time.perf_counter() - started


def job(sm, bucket: str, name: str) -> float:
    started = time.perf_counter()
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::000000000000:role/bench",
        HyperParameters={"objective": "binary:logistic", "tree_method": "hist", "max_depth": "6", "eta": "0.3",
                         "num_round": str(ROUNDS)},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv",
                          "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                          "S3Uri": f"s3://{bucket}/train/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    desc = wait_for_training_job(sm, name)
    elapsed = time.perf_counter() - started
    phases = {t["Status"]: t for t in desc["SecondaryStatusTransitions"]}
    spans = [(s, (phases[s]["EndTime"] - phases[s]["StartTime"]).total_seconds()) for s in ("Starting", "Downloading", "Training",
                                                                         "Uploading") if s in phases]
    print("    phases: " + ", ".join(f"{s} {seconds:.3f} s" for s, seconds in spans))
    return elapsed


def wait_for_training_job(sm, name: str) -> dict:
    """Poll every 50 ms until the job has ended; its Describe answer, or exit when it did not complete."""
    while True:
        desc = sm.describe_training_job(TrainingJobName=name)
        if desc["TrainingJobStatus"] != "InProgress":
            break
        time.sleep(0.05)
    if desc["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"job {name} ended {desc['TrainingJobStatus']}: {desc.get('FailureReason')}")
    return desc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "train.csv"
        make_csv(csv_path, args.rows)
        print(f"data: {args.rows} x 20 CSV, {csv_path.stat().st_size / 1e6:.1f} MB; xgboost hist, {ROUNDS} rounds")
        with ServerProcess(Path(tmp) / "home") as server:
            s3, sm = server.client("s3"), server.client("sagemaker")
            s3.create_bucket(Bucket="bench")
            s3.upload_file(str(csv_path), "bench", "train/train.csv")
            job(sm, "bench", "warmup")  # the first job also starts the job forkserver
            direct(csv_path)
            jobs, directs, ratios = [], [], []
            for i in range(args.repeats):
                j = job(sm, "bench", f"bench-{i}")
                d = direct(csv_path)
                jobs.append(j)
                directs.append(d)
                ratios.append(j / d)
                print(f"  run {i + 1}: job {j:.2f} s   direct {d:.2f} s   ratio {j / d:.3f}")
    print(f"median job {statistics.median(jobs):.2f} s, median direct {statistics.median(directs):.2f} s")
    print(f"ratio job/direct (median of pairs): {statistics.median(ratios):.3f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
