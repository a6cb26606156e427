"""Demo stage: train XGBoost and Linear Learner with training jobs and show their validation metrics."""

from __future__ import annotations

from sagelab.demo.common import BUCKET, LINEAR_LEARNER_IMAGE, ROLE, XGBOOST_IMAGE, wait_for


def channel(name: str, uri: str) -> dict:
    return {"ChannelName": name, "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}


def training_request(name: str, image: str, hyperparameters: dict[str, str], data_prefix: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [channel("train", f"{data_prefix}/train/"),
                            channel("validation", f"{data_prefix}/validation/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def wait_for_training(sm, names: list[str], out) -> dict[str, dict]:
    return wait_for(names, lambda n: sm.describe_training_job(TrainingJobName=n),
                    lambda d: d["TrainingJobStatus"], out, lambda d: f"/{d['SecondaryStatus']}")


def train_both(sm, stamp: str, data_prefix: str, out) -> dict[str, dict] | None:
    """Train both algorithms side by side; None when either failed (the table says why)."""
    jobs = [
        training_request(f"demo-xgboost-{stamp}", XGBOOST_IMAGE, {
            "objective": "binary:logistic", "num_round": "100", "max_depth": "4", "eta": "0.2",
            "eval_metric": "auc,error,logloss"}, data_prefix),
        training_request(f"demo-linear-learner-{stamp}", LINEAR_LEARNER_IMAGE, {
            "predictor_type": "binary_classifier", "epochs": "15", "mini_batch_size": "100"}, data_prefix),
    ]
    out.write("Training XGBoost and Linear Learner through the SageMaker API ...\n")
    for request in jobs:
        sm.create_training_job(**request)
    results = wait_for_training(sm, [j["TrainingJobName"] for j in jobs], out)
    return results if report(results, out) == 0 else None


def report(results: dict[str, dict], out) -> int:
    out.write("\nValidation metrics\n")
    out.write(f"  {'training job':<40} {'status':<10} {'seconds':>7}  metrics\n")
    failed = 0
    for name, desc in results.items():
        metrics = {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])}
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("validation:"))
        status = desc["TrainingJobStatus"]
        if status != "Completed":
            failed += 1
            shown = desc.get("FailureReason", "")
        seconds = desc.get("TrainingTimeInSeconds", 0)
        out.write(f"  {name:<40} {status:<10} {seconds:>7}  {shown}\n")
        if status == "Completed":
            out.write(f"  {'':<40} model: {desc['ModelArtifacts']['S3ModelArtifacts']}\n")
    return 1 if failed else 0


def tune_xgboost(sm, name: str, data_prefix: str, out, trials: int = 6, parallel: int = 2) -> dict | None:
    """Bayesian search over XGBoost's depth, learning rate and rounds; returns the best trial's description."""
    definition = training_request("unused", XGBOOST_IMAGE, {
        "objective": "binary:logistic", "eval_metric": "auc"}, data_prefix)
    definition = {key: definition[key] for key in ("AlgorithmSpecification", "RoleArn", "InputDataConfig",
                                                   "OutputDataConfig", "ResourceConfig", "StoppingCondition")}
    definition["StaticHyperParameters"] = {"objective": "binary:logistic", "eval_metric": "auc"}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian", "RandomSeed": 7,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8"},
                                           {"Name": "num_round", "MinValue": "20", "MaxValue": "150"}],
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5",
                                               "ScalingType": "Logarithmic"}]}},
        TrainingJobDefinition=definition)
    out.write(f"\nTuning XGBoost (Bayesian, {trials} trials, {parallel} in parallel) as {name} ...\n")

    def detail(desc: dict) -> str:
        counters = desc["TrainingJobStatusCounters"]
        return f" ({counters['Completed']} completed, {counters['InProgress']} running)"

    desc = wait_for([name], lambda n: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n),
                    lambda d: d["HyperParameterTuningJobStatus"], out, detail)[name]
    best = desc.get("BestTrainingJob")
    if desc["HyperParameterTuningJobStatus"] != "Completed" or best is None:
        out.write(f"  {desc['HyperParameterTuningJobStatus']}: {desc.get('FailureReason', 'no trial finished')}\n")
        return None
    trials_seen = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending",
        MaxResults=100)["TrainingJobSummaries"]
    out.write(f"  {'trial':<44} {'validation:auc':>14}  hyperparameters\n")
    for trial in trials_seen:
        value = trial.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
        shown = f"{value:.4f}" if value is not None else trial["TrainingJobStatus"]
        tuned = ", ".join(f"{k}={v}" for k, v in sorted(trial["TunedHyperParameters"].items()))
        out.write(f"  {trial['TrainingJobName']:<44} {shown:>14}  {tuned}\n")
    out.write(f"  best: {best['TrainingJobName']}\n")
    return sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
