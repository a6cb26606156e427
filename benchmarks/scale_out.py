"""Scale-out: the same tuning job on the local engine and on Ray, on this machine, side by side in one run.

A Random tuning job of 16 trials (tiny XGBoost: 10 rounds on 500 rows, 2 trials in parallel) is created
through the real API on two servers, one with SAGELAB_ENGINE=local and one with SAGELAB_ENGINE=ray, both
with SAGELAB_MAX_CONCURRENT_JOBS=2. Runs alternate local, ray, ray, local, ... so that drift in the machine's
load hits both alike; each server first runs one warm-up trial (the local engine's forkserver, Ray's
workers and their forkservers). Both servers stay up the whole run, so either one's idle processes cost the
other alike.

It prints each run's wall time (CreateHyperParameterTuningJob until Describe reports Completed), the
median of each, the ratio Ray / local (target <= 1.15), and each engine's job start latency: for every
trial, from its CreationTime to its first log line, and to its SecondaryStatus "Training" transition
(medians over all trials).

Run: .venv/bin/python benchmarks/scale_out.py [--repeats 2] [--trials 16]
Times are noisy on a shared machine; the comparison is made within one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sagelab.embedded import ServerProcess

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/bench"
BUCKET = "scale-out-bench"
ROWS = 500
ROUNDS = 10
PARALLEL = 2
RANGES = {
    "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"},
                                  {"Name": "min_child_weight", "MinValue": "0", "MaxValue": "10"}],
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}],
}


def write_data(folder: Path) -> dict[str, Path]:
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=ROWS + 200, n_features=10, random_state=1)
    data = np.column_stack([labels, features])
    paths = {}
    for name, rows in {"train": data[:ROWS], "validation": data[ROWS:]}.items():
        paths[name] = folder / f"{name}.csv"
        np.savetxt(paths[name], rows, delimiter=",", fmt="%.8g")
    return paths


def create(sm, name: str, trials: int) -> None:
    channels = [{"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{c}/"}}} for c in ("train", "validation")]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random", "RandomSeed": 7, "ParameterRanges": RANGES,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": PARALLEL}},
        TrainingJobDefinition={
            "StaticHyperParameters": {"num_round": str(ROUNDS), "objective": "binary:logistic"},
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE, "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}})


def run(sm, name: str, trials: int) -> float:
    started = time.perf_counter()
    create(sm, name, trials)
    while True:
        desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        status = desc["HyperParameterTuningJobStatus"]
        if status not in ("InProgress", "Stopping"):
            if status != "Completed":
                raise SystemExit(f"tuning job {name} ended {status}: {desc.get('FailureReason')}")
            return time.perf_counter() - started
        time.sleep(0.05)


def start_latencies(server: ServerProcess, tuning_job: str) -> tuple[list[float], list[float]]:
    """Per trial: seconds from CreationTime to the first log line, and to the "Training" status."""
    sm, logs = server.client("sagemaker"), server.client("logs")
    to_log, to_training = [], []
    summaries = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_job, MaxResults=100)["TrainingJobSummaries"]
    for summary in summaries:
        desc = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        created = desc["CreationTime"].timestamp()
        training = next(t["StartTime"] for t in desc["SecondaryStatusTransitions"] if t["Status"] == "Training")
        to_training.append(training.timestamp() - created)
        streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                            logStreamNamePrefix=f"{desc['TrainingJobName']}/")["logStreams"]
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", limit=1, startFromHead=True,
                                     logStreamName=streams[0]["logStreamName"])["events"]
        to_log.append(events[0]["timestamp"] / 1000 - created)
    return to_log, to_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="runs on each engine")
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_data(Path(tmp))
        servers = {engine: ServerProcess(Path(tmp) / engine, env={
            "SAGELAB_ENGINE": engine, "SAGELAB_MAX_CONCURRENT_JOBS": str(PARALLEL),
            "RAY_USAGE_STATS_ENABLED": "0"}) for engine in ("local", "ray")}
        try:
            for server in servers.values():
                server.start(timeout=120)
                s3 = server.client("s3")
                s3.create_bucket(Bucket=BUCKET)
                for name, path in paths.items():
                    s3.upload_file(str(path), BUCKET, f"data/{name}/{name}.csv")
                run(server.client("sagemaker"), "warmup", PARALLEL)
            times: dict[str, list[float]] = {"local": [], "ray": []}
            latencies: dict[str, tuple[list[float], list[float]]] = {"local": ([], []), "ray": ([], [])}
            order = ["local", "ray", "ray", "local"] * args.repeats
            print(f"{args.trials} tuning trials ({ROUNDS} rounds of XGBoost on {ROWS} rows), {PARALLEL} in parallel")
            for index, engine in enumerate(order[:2 * args.repeats]):
                name = f"scale-out-{index}"
                seconds = run(servers[engine].client("sagemaker"), name, args.trials)
                times[engine].append(seconds)
                to_log, to_training = start_latencies(servers[engine], name)
                latencies[engine][0].extend(to_log)
                latencies[engine][1].extend(to_training)
                print(f"  {engine:5}: {seconds:6.2f} s")
            local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
            print(f"median wall time: local {local:.2f} s, ray {ray:.2f} s; ratio ray / local = {ray / local:.2f}"
                  "  (target <= 1.15)")
            for engine, (to_log, to_training) in latencies.items():
                print(f"job start latency on {engine:5} (median over {len(to_log)} trials): "
                      f"to first log line {statistics.median(to_log) * 1000:.0f} ms, "
                      f"to Training {statistics.median(to_training) * 1000:.0f} ms")
        finally:
            for server in servers.values():
                server.stop(timeout=30)


if __name__ == "__main__":
    main()
