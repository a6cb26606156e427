"""Batch-transform overhead: an XGBoost model scores a 1,000,000 x 20 CSV as a sagelab transform job and,
in the same run, in one process with pyarrow and xgboost. Prints the ratio sagelab/direct throughput last.

Run: .venv/bin/python benchmarks/transform.py [--rows 1000000] [--repeats 3]
The job (SplitType Line, MultiRecord, MaxPayloadInMB 6, MaxConcurrentTransforms = CPU cores) is timed from
CreateTransformJob until DescribeTransformJob (polled every 50 ms) reports Completed. The direct run reads
the CSV with pyarrow, predicts with `inplace_predict` on every core and writes one prediction per line,
byte for byte what the job writes (checked once). Throughput ratio = direct time / job time; 1.0 is parity.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import xgboost as xgb

from sagelab.embedded import ServerProcess

FEATURES = 20
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3}
ROUNDS = 100


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    logits = x[:, :5] @ rng.normal(size=5) + 0.5 * x[:, 5] * x[:, 6]
    return x, (logits + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)


def model_tar(booster: xgb.Booster) -> bytes:
    raw = bytes(booster.save_raw("json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def direct(booster: xgb.Booster, source: Path, target: Path) -> float:
    started = time.perf_counter()
    table = pacsv.read_csv(source, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    data = np.column_stack([c.to_numpy().astype(np.float32) for c in table.columns])
    booster.set_param({"nthread": os.cpu_count() or 1})
    predictions = booster.inplace_predict(data)
    target.write_bytes(("\n".join(map(str, predictions)) + "\n").encode())
    return time.perf_counter() - started


def job(sm, name: str) -> float:
    started = time.perf_counter()
    sm.create_transform_job(
        TransformJobName=name, ModelName="bench-model", BatchStrategy="MultiRecord", MaxPayloadInMB=6,
        MaxConcurrentTransforms=os.cpu_count() or 1,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bench/input/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://bench/output/{name}", "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1})
    while True:
        desc = sm.describe_transform_job(TransformJobName=name)
        if desc["TransformJobStatus"] != "InProgress":
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if desc["TransformJobStatus"] != "Completed":
        raise SystemExit(f"job {name} ended {desc['TransformJobStatus']}: {desc.get('FailureReason')}")
    start = (desc["TransformStartTime"] - desc["CreationTime"]).total_seconds()
    work = (desc["TransformEndTime"] - desc["TransformStartTime"]).total_seconds()
    print(f"    job phases: created -> started {start:.3f} s, started -> ended {work:.3f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, direct_out = Path(tmp) / "input.csv", Path(tmp) / "direct.out"
        features, _ = make_data(args.rows)
        np.savetxt(csv_path, features, delimiter=",", fmt="%.6g")
        train_x, train_y = make_data(100_000, seed=1)
        booster = xgb.train(PARAMS, xgb.DMatrix(train_x, label=train_y), num_boost_round=ROUNDS)
        print(f"data: {args.rows} x {FEATURES} CSV, {csv_path.stat().st_size / 1e6:.1f} MB; xgboost "
              f"{ROUNDS} trees of depth {PARAMS['max_depth']}; {os.cpu_count()} cores")
        with ServerProcess(Path(tmp) / "home") as server:
            s3, sm = server.client("s3"), server.client("sagemaker")
            s3.create_bucket(Bucket="bench")
            s3.upload_file(str(csv_path), "bench", "input/input.csv")
            s3.put_object(Bucket="bench", Key="model/model.tar.gz", Body=model_tar(booster))
            sm.create_model(ModelName="bench-model", ExecutionRoleArn="arn:aws:iam::000000000000:role/bench",
                            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench/model/model.tar.gz"})
            job(sm, "warmup")  # the first job also starts the job forkserver
            direct(booster, csv_path, direct_out)
            written = s3.get_object(Bucket="bench", Key="output/warmup/input.csv.out")["Body"].read()
            if written != direct_out.read_bytes():
                raise SystemExit("the transform job's output differs from the direct predictions")
            lines = written.count(b"\n")
            print(f"  output checked: {lines} predictions, identical to the direct run")
            jobs, directs, ratios = [], [], []
            for i in range(args.repeats):
                j = job(sm, f"bench-{i}")
                d = direct(booster, csv_path, direct_out)
                jobs.append(j)
                directs.append(d)
                ratios.append(d / j)
                print(f"  run {i + 1}: job {j:.2f} s   direct {d:.2f} s   throughput ratio {d / j:.3f}")
    print(f"median job {statistics.median(jobs):.2f} s, median direct {statistics.median(directs):.2f} s")
    print(f"ratio sagelab/direct throughput (median of pairs): {statistics.median(ratios):.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
