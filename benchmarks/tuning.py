"""Automatic model tuning: Bayesian against Random search on one fixed problem, and what parallel trials buy.

1. Search quality. XGBoost (30 rounds) on a generated binary classification set (2,000 train / 1,000
   validation rows, 20 features, 8 % label noise), objective validation:auc, four ranges shaped like AWS's
   recommended XGBoost ranges: eta [0.1, 0.5], alpha [0, 100], min_child_weight [0, 120], max_depth [1, 10].
   Bayesian and Random tuning jobs with the same budget (20 trials, 2 in parallel), one pair per seed, all in
   one run. For each pair it prints both best objectives and how many trials Bayesian needed to reach Random's
   final best; then the medians. Target: Bayesian reaches Random's best within 60 % of the trials (median).
2. Parallel trials. One Random tuning job (8 trials, 200 rounds on 20,000 rows each) with
   MaxParallelTrainingJobs=2 and the same job with =1, alternated; prints the ratio of median wall times. Target <= 0.6 on 2 cores. Beside it,
   the same eight trainings called directly with xgboost in one and in two warm worker processes: on a
   machine whose cores are shared, that ratio is what parallel trials could reach at best.

Run: .venv/bin/python benchmarks/tuning.py [--seeds 5] [--trials 20] [--part 1|2|all]
Wall times run from CreateHyperParameterTuningJob until DescribeHyperParameterTuningJob reports Completed.
Times and best values are noisy on a shared machine; the comparison in each part is made within one run.
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
BUCKET = "tuning-bench"
#: Part 2's trials train on more rows, so that training rather than each job's fixed start-up dominates.
LARGE_ROWS = 20_000
ROUNDS = 200
RANGES = {
    "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"},
                                  {"Name": "alpha", "MinValue": "0", "MaxValue": "100"},
                                  {"Name": "min_child_weight", "MinValue": "0", "MaxValue": "120"}],
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "10"}],
}


def write_data(folder: Path, prefix: str, train_rows: int) -> dict[str, Path]:
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=train_rows + 1000, n_features=20, n_informative=6,
                                           n_redundant=0, n_clusters_per_class=2, flip_y=0.08, class_sep=0.7,
                                           random_state=1)
    data = np.column_stack([labels, features])
    paths = {}
    for name, rows in {"train": data[:train_rows], "validation": data[train_rows:]}.items():
        paths[name] = folder / f"{prefix}-{name}.csv"
        np.savetxt(paths[name], rows, delimiter=",", fmt="%.8g")
    return paths


def create(sm, name: str, strategy: str, *, trials: int, parallel: int, seed: int, rounds: int,
           data: str = "small") -> None:
    channels = [{"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{data}/{c}/"}}} for c in ("train", "validation")]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": strategy, "RandomSeed": seed, "ParameterRanges": RANGES,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": parallel}},
        TrainingJobDefinition={
            "StaticHyperParameters": {"num_round": str(rounds), "objective": "binary:logistic"},
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE, "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}})


def wait(sm, name: str, poll: float = 0.1) -> dict:
    while True:
        desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if desc["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            if desc["HyperParameterTuningJobStatus"] != "Completed":
                raise SystemExit(f"tuning job {name} ended {desc['HyperParameterTuningJobStatus']}: "
                                 f"{desc.get('FailureReason')}")
            return desc
        time.sleep(poll)


def objective_curve(sm, name: str) -> list[float | None]:
    """Each trial's objective, in launch order (trial names carry their index)."""
    summaries, token = [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=100, SortBy="Name", **({"NextToken": token} if token else {}))
        summaries += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            break
    summaries.sort(key=lambda s: int(s["TrainingJobName"].split("-")[-2]))
    return [s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value") for s in summaries]


def trials_to_reach(curve: list[float | None], target: float) -> int | None:
    best = -float("inf")
    for index, value in enumerate(curve, start=1):
        if value is not None:
            best = max(best, value)
        if best >= target:
            return index
    return None


def compare_strategies(sm, seeds: int, trials: int) -> None:
    print(f"\n1. Bayesian vs Random: {trials} trials each, 2 in parallel, {seeds} seeds (all jobs submitted at once)")
    pairs = [(f"random-{s}", f"bayesian-{s}", s) for s in range(seeds)]
    for random_name, bayes_name, seed in pairs:
        create(sm, random_name, "Random", trials=trials, parallel=2, seed=seed, rounds=30)
        # Independent seeds: Bayesian's first (random) proposals would otherwise repeat Random's.
        create(sm, bayes_name, "Bayesian", trials=trials, parallel=2, seed=1000 + seed, rounds=30)
    fractions, random_bests, bayes_bests = [], [], []
    for random_name, bayes_name, seed in pairs:
        wait(sm, random_name)
        wait(sm, bayes_name)
        random_curve, bayes_curve = objective_curve(sm, random_name), objective_curve(sm, bayes_name)
        random_best = max(v for v in random_curve if v is not None)
        bayes_best = max(v for v in bayes_curve if v is not None)
        needed = trials_to_reach(bayes_curve, random_best)
        # Not reaching it within the budget counts as one trial more than the budget.
        fractions.append((needed if needed is not None else trials + 1) / trials)
        random_bests.append(random_best)
        bayes_bests.append(bayes_best)
        reached = f"after {needed} trials ({needed / trials:.0%})" if needed else f"not within {trials} trials"
        print(f"  seed {seed}: Random best {random_best:.5f}   Bayesian best {bayes_best:.5f}   "
              f"Bayesian reached Random's best {reached}")
    print(f"  median best objective: Random {statistics.median(random_bests):.5f}   "
          f"Bayesian {statistics.median(bayes_bests):.5f}")
    print(f"  trials Bayesian needed to reach Random's final best (median over seeds): "
          f"{statistics.median(fractions):.0%} of the budget  (target <= 60 %)")


def _train_directly(args: tuple[dict[str, str], int]) -> None:
    import xgboost as xgb

    tuned, rounds = args
    params = {"objective": "binary:logistic", "eval_metric": "auc", "nthread": 1, "eta": float(tuned["eta"]),
              "alpha": float(tuned["alpha"]), "min_child_weight": float(tuned["min_child_weight"]),
              "max_depth": int(tuned["max_depth"])}
    xgb.train(params, _DATA["train"], rounds, evals=[(_DATA["validation"], "validation")], verbose_eval=False)


_DATA: dict = {}


def direct_parallel(paths: dict[str, Path], trials: list[dict[str, str]], rounds: int) -> dict[int, float]:
    """The same trainings called directly in 1 or 2 warm worker processes: what the machine allows right now."""
    import multiprocessing

    import xgboost as xgb

    for name, path in paths.items():
        data = np.loadtxt(path, delimiter=",")
        _DATA[name] = xgb.DMatrix(data[:, 1:], label=data[:, 0], nthread=1)
    times = {}
    for workers in (1, 2):
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_train_directly, [(trials[0], 1)] * workers)  # warm the workers
            started = time.perf_counter()
            pool.map(_train_directly, [(t, rounds) for t in trials], chunksize=1)
            times[workers] = time.perf_counter() - started
    return times


def compare_parallel(sm, paths: dict[str, Path], repeats: int) -> None:
    print(f"\n2. Wall time, one Random tuning job of 8 trials ({ROUNDS} rounds on {LARGE_ROWS:,} rows each): "
          "MaxParallelTrainingJobs 2 vs 1")
    times: dict[int, list[float]] = {1: [], 2: []}
    direct: dict[int, list[float]] = {1: [], 2: []}
    order = [1, 2, 2, 1] * repeats  # alternate, so that drift in the machine's load hits both alike
    for index, parallel in enumerate(order[:2 * repeats]):
        name = f"parallel-{parallel}-{index}"
        started = time.perf_counter()
        create(sm, name, "Random", trials=8, parallel=parallel, seed=7, rounds=ROUNDS, data="large")
        wait(sm, name)
        times[parallel].append(time.perf_counter() - started)
        print(f"  MaxParallelTrainingJobs={parallel}: {times[parallel][-1]:.1f} s")
        if index % 2 == 1:
            tuned = [s["TunedHyperParameters"] for s in sm.list_training_jobs_for_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=name, MaxResults=100)["TrainingJobSummaries"]]
            bare = direct_parallel(paths, tuned, ROUNDS)
            for workers, seconds in bare.items():
                direct[workers].append(seconds)
            print(f"  the same 8 trainings called directly: 1 process {bare[1]:.1f} s, 2 processes {bare[2]:.1f} s")
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"  median: parallel 1 {one:.1f} s, parallel 2 {two:.1f} s; ratio 2/1 = {two / one:.2f}  (target <= 0.6)")
    bare_ratio = statistics.median(direct[2]) / statistics.median(direct[1])
    print(f"  the machine meanwhile, xgboost called directly: 2 processes / 1 = {bare_ratio:.2f} "
          "(what parallel trials could reach at best)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each parallelism in part 2")
    parser.add_argument("--part", choices=("1", "2", "all"), default="all", help="run only part 1 or part 2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = write_data(Path(tmp), "small", 2000)
        large = write_data(Path(tmp), "large", LARGE_ROWS)
        with ServerProcess(Path(tmp) / "home") as server:
            s3, sm = server.client("s3"), server.client("sagemaker")
            s3.create_bucket(Bucket=BUCKET)
            for prefix, paths in (("small", small), ("large", large)):
                for name, path in paths.items():
                    s3.upload_file(str(path), BUCKET, f"{prefix}/{name}/{name}.csv")
            create(sm, "warmup", "Random", trials=1, parallel=1, seed=0, rounds=5)  # starts the job forkserver
            wait(sm, "warmup")
            started = time.perf_counter()
            if args.part in ("1", "all"):
                compare_strategies(sm, args.seeds, args.trials)
            if args.part in ("2", "all"):
                compare_parallel(sm, large, args.repeats)
            print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
