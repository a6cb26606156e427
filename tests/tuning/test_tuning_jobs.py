"""Hyperparameter tuning jobs end to end: a real server, real boto3, real XGBoost trials."""

from __future__ import annotations

import itertools
import re
import statistics
import time

import botocore.exceptions
import pytest
from conftest import unique
from helpers import upload_breast_cancer
from tuning_helpers import (
    all_trials,
    config,
    definition,
    max_overlap,
    objective_value,
    upload_slow_set,
    wait_tuning,
)

FAST = {"num_round": "8", "objective": "binary:logistic"}


@pytest.fixture(scope="module")
def bucket(s3, tmp_path_factory):
    name = unique("tuning")
    s3.create_bucket(Bucket=name)
    folder = tmp_path_factory.mktemp("tuning-data")
    upload_breast_cancer(s3, name, folder)
    upload_slow_set(s3, name, folder)
    return name


def _intervals(sm, trials: list[dict]) -> list[tuple[float, float]]:
    out = []
    for trial in trials:
        job = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        out.append((job["CreationTime"].timestamp(), job["TrainingEndTime"].timestamp()))
    return out


@pytest.mark.slow
def test_grid_runs_every_combination_exactly_once(sm, bucket):
    name = unique("grid")
    ranges = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "3", "4"]},
                                             {"Name": "eta", "Values": ["0.1", "0.3"]}]}
    arn = sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config("Grid", ranges),
        TrainingJobDefinition=definition(bucket, FAST),
        Tags=[{"Key": "team", "Value": "tuning"}])["HyperParameterTuningJobArn"]
    assert re.fullmatch(rf"arn:aws:sagemaker:us-east-1:\d{{12}}:hyper-parameter-tuning-job/{name}", arn)
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"] == {"Completed": 6, "InProgress": 0, "RetryableError": 0,
                                                 "NonRetryableError": 0, "Stopped": 0}
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    assert desc["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Off"
    assert desc["HyperParameterTuningEndTime"] >= desc["CreationTime"]

    trials = all_trials(sm, name)
    assert [t["TrainingJobName"] for t in trials] == sorted(t["TrainingJobName"] for t in trials)
    assert sorted(int(t["TrainingJobName"].split("-")[-2]) for t in trials) == [1, 2, 3, 4, 5, 6]
    assert all(re.fullmatch(rf"{name}-\d{{3}}-[0-9a-f]{{8}}", t["TrainingJobName"]) for t in trials)
    combos = [(t["TunedHyperParameters"]["max_depth"], t["TunedHyperParameters"]["eta"]) for t in trials]
    assert sorted(combos) == sorted(itertools.product(["2", "3", "4"], ["0.1", "0.3"]))

    best = desc["BestTrainingJob"]
    assert objective_value(best) == max(objective_value(t) for t in trials)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:auc"
    ranked = all_trials(sm, name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    values = [objective_value(t) for t in ranked]
    assert values == sorted(values, reverse=True) and values[0] == objective_value(best)

    job = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert job["TuningJobArn"] == arn
    assert job["HyperParameters"]["_tuning_objective_metric"] == "validation:auc"
    assert job["HyperParameters"]["num_round"] == "8"
    assert job["HyperParameters"]["max_depth"] == best["TunedHyperParameters"]["max_depth"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{best['TrainingJobName']}/output/model.tar.gz")
    assert {"Key": "team", "Value": "tuning"} in sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]

    listed = sm.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["Strategy"], s["HyperParameterTuningJobStatus"]) for s in listed] \
        == [(name, "Grid", "Completed")]
    assert listed[0]["TrainingJobStatusCounters"]["Completed"] == 6
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert err.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.slow
def test_random_search_stays_in_ranges_honours_scaling_and_parallel_limit(sm, bucket):
    name = unique("random")
    ranges = {"ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"}],
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6", "ScalingType": "Linear"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config("Random", ranges, max_jobs=8, parallel=2, RandomSeed=11),
        TrainingJobDefinition=definition(bucket, FAST))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"]["Completed"] == 8
    trials = all_trials(sm, name)
    assert len(trials) == 8
    etas = [float(t["TunedHyperParameters"]["eta"]) for t in trials]
    subsamples = [float(t["TunedHyperParameters"]["subsample"]) for t in trials]
    depths = [t["TunedHyperParameters"]["max_depth"] for t in trials]
    assert all(0.0001 <= e <= 1 for e in etas) and all(0.5 <= s <= 0.999 for s in subsamples)
    assert all(d.isdigit() and 1 <= int(d) <= 6 for d in depths)
    # Log-uniform over four decades puts half the values below 0.01; a linear scale would put ~1 % there.
    assert sum(e < 0.01 for e in etas) >= 3
    # Reverse-logarithmic crowds values towards the top of the range.
    assert statistics.median(subsamples) > 0.9
    assert max_overlap(_intervals(sm, trials)) <= 2


@pytest.mark.slow
def test_bayesian_search_runs_one_trial_at_a_time_within_ranges(sm, bucket):
    name = unique("bayes")
    ranges = {"ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "5"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config("Bayesian", ranges, max_jobs=5, parallel=1, RandomSeed=3),
        TrainingJobDefinition=definition(bucket, FAST))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    trials = all_trials(sm, name)
    assert len(trials) == 5 and desc["ObjectiveStatusCounters"]["Succeeded"] == 5
    assert all(0.01 <= float(t["TunedHyperParameters"]["eta"]) <= 0.5 for t in trials)
    assert all(2 <= int(t["TunedHyperParameters"]["max_depth"]) <= 5 for t in trials)
    assert max_overlap(_intervals(sm, trials)) == 1
    assert objective_value(desc["BestTrainingJob"]) == max(objective_value(t) for t in trials)


@pytest.mark.slow
def test_hyperband_stops_weak_trials_early(sm, bucket):
    name = unique("hyperband")
    ranges = {"ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.0001", "MaxValue": "0.5", "ScalingType": "Logarithmic"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config(
            "Hyperband", ranges, metric="validation:logloss", objective="Minimize", max_jobs=9, parallel=1,
            RandomSeed=5, StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 3, "MaxResource": 100}}),
        TrainingJobDefinition=definition(bucket, {"num_round": "100", "max_depth": "4",
                                                  "objective": "binary:logistic"}, data="slow"))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    counters = desc["TrainingJobStatusCounters"]
    assert counters["Stopped"] >= 1 and counters["Completed"] >= 1
    assert counters["Stopped"] + counters["Completed"] == 9
    best = objective_value(desc["BestTrainingJob"])
    assert best < 0.25  # a good learning rate reaches a low loss
    stopped = all_trials(sm, name, StatusEquals="Stopped")
    assert len(stopped) == counters["Stopped"]
    for trial in stopped:
        assert trial["ObjectiveStatus"] == "Succeeded"  # its last logged loss
        job = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    # Which trials Hyperband stops depends on its brackets, but tiny learning rates (loss still near
    # log(2) = 0.69) are among them.
    assert max(objective_value(t) for t in stopped) > 0.4


@pytest.mark.slow
def test_early_stopping_auto_stops_clearly_worse_trials(sm, bucket):
    name = unique("median")
    ranges = {"CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.3", "0.25", "0.2", "0.0005", "0.0002"]}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config("Grid", ranges, metric="validation:logloss", objective="Minimize",
                                             parallel=1, TrainingJobEarlyStoppingType="Auto"),
        TrainingJobDefinition=definition(bucket, {"num_round": "100", "max_depth": "4",
                                                  "objective": "binary:logistic"}, data="slow"))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    status = {t["TunedHyperParameters"]["eta"]: t["TrainingJobStatus"] for t in all_trials(sm, name)}
    # The strong trials always complete; a weak one is stopped once the driver has read enough of its log,
    # which a very fast trial can outrun, so at least one of the two (usually both) ends Stopped.
    assert [status[eta] for eta in ("0.3", "0.25", "0.2")] == ["Completed"] * 3
    assert "Stopped" in (status["0.0005"], status["0.0002"])
    assert desc["TrainingJobStatusCounters"]["Stopped"] == list(status.values()).count("Stopped")
    assert desc["BestTrainingJob"]["TunedHyperParameters"]["eta"] in ("0.3", "0.25", "0.2")


def _wait_running(sm, name: str, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [t for t in all_trials(sm, name) if t["TrainingJobStatus"] == "InProgress"
                   and sm.describe_training_job(TrainingJobName=t["TrainingJobName"])["SecondaryStatus"] == "Training"]
        if len(running) >= count:
            return running
        time.sleep(0.3)
    raise TimeoutError(f"{count} trials of {name} did not start training")


@pytest.mark.slow
def test_stop_midway_leaves_no_trial_running(sm, bucket):
    name = unique("stopped")
    ranges = {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "3", "MaxValue": "8"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config("Random", ranges, max_jobs=6),
        TrainingJobDefinition=definition(bucket, {"num_round": "5000", "objective": "binary:logistic"},
                                         data="slow"))
    _wait_running(sm, name, 2)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name)["HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    desc = wait_tuning(sm, name, timeout=60)
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    assert desc["TrainingJobStatusCounters"]["InProgress"] == 0
    assert desc["TrainingJobStatusCounters"]["Stopped"] == 2
    trials = all_trials(sm, name)
    assert len(trials) == 2  # nothing was launched after the stop
    for trial in trials:
        assert sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])["TrainingJobStatus"] == "Stopped"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert err.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.slow
def test_failing_trials_are_counted_and_the_job_goes_on(sm, bucket):
    name = unique("failing")
    # reg:gamma needs positive labels; breast cancer's are 0/1, so those trials fail with a ClientError.
    ranges = {"CategoricalParameterRanges": [{"Name": "objective", "Values": ["binary:logistic", "reg:gamma"]},
                                             {"Name": "max_depth", "Values": ["2", "3"]}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config("Grid", ranges, max_jobs=4),
        TrainingJobDefinition=definition(bucket, {"num_round": "5"}))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"] == {"Completed": 2, "InProgress": 0, "RetryableError": 0,
                                                 "NonRetryableError": 2, "Stopped": 0}
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 2, "Pending": 0, "Failed": 2}
    assert desc["BestTrainingJob"]["TunedHyperParameters"]["objective"] == "binary:logistic"
    failed = all_trials(sm, name, StatusEquals="Failed")
    assert len(failed) == 2
    for trial in failed:
        assert trial["TunedHyperParameters"]["objective"] == "reg:gamma"
        assert trial["ObjectiveStatus"] == "Failed" and trial["FailureReason"].startswith("ClientError")
        assert "FinalHyperParameterTuningJobObjectiveMetric" not in trial
    ranked = all_trials(sm, name, SortBy="FinalObjectiveMetricValue")
    assert [t["TunedHyperParameters"]["objective"] for t in ranked] == ["binary:logistic"] * 2


@pytest.mark.slow
def test_a_job_whose_every_trial_fails_fails(sm, bucket):
    name = unique("allfail")
    ranges = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "3"]}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig=config("Grid", ranges),
        TrainingJobDefinition=definition(bucket, {"num_round": "3", "objective": "reg:gamma"}))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Failed"
    assert "No training job succeeded" in desc["FailureReason"]
    assert desc["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert "BestTrainingJob" not in desc


@pytest.mark.slow
def test_warm_start_uses_parent_results(sm, bucket):
    parent = unique("parent")
    logloss = {"metric": "validation:logloss", "objective": "Minimize"}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=parent,
        HyperParameterTuningJobConfig=config("Random", {"ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.2", "MaxValue": "0.5"}]}, max_jobs=3, RandomSeed=1, **logloss),
        TrainingJobDefinition=definition(bucket, FAST))
    parent_desc = wait_tuning(sm, parent)
    assert parent_desc["HyperParameterTuningJobStatus"] == "Completed"

    # The child searches only poor learning rates: its own best is worse than the parent's.
    child = unique("child")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=child,
        HyperParameterTuningJobConfig=config("Bayesian", {"ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.0001", "MaxValue": "0.0005"}]}, max_jobs=2, **logloss),
        TrainingJobDefinition=definition(bucket, FAST),
        WarmStartConfig={"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                         "WarmStartType": "TransferLearning"})
    desc = wait_tuning(sm, child)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["WarmStartConfig"]["WarmStartType"] == "TransferLearning"
    assert desc["BestTrainingJob"]["TuningJobName"] == child
    overall = desc["OverallBestTrainingJob"]
    assert overall["TuningJobName"] == parent
    assert overall["TrainingJobName"] == parent_desc["BestTrainingJob"]["TrainingJobName"]
    assert objective_value(overall) < objective_value(desc["BestTrainingJob"])
    assert len(all_trials(sm, child)) == 2  # the parent's trials are not the child's

    def refused(**changes) -> str:
        request = {"HyperParameterTuningJobName": unique("orphan"),
                   "HyperParameterTuningJobConfig": config("Random", {"ContinuousParameterRanges": [
                       {"Name": "eta", "MinValue": "0.1", "MaxValue": "0.2"}]}, max_jobs=1, **logloss),
                   "TrainingJobDefinition": definition(bucket, FAST),
                   "WarmStartConfig": {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                                       "WarmStartType": "IdenticalDataAndAlgorithm"}}
        request.update(changes)
        with pytest.raises(botocore.exceptions.ClientError) as err:
            sm.create_hyper_parameter_tuning_job(**request)
        assert err.value.response["Error"]["Code"] == "ValidationException"
        return err.value.response["Error"]["Message"]

    assert "static plus tunable" in refused(TrainingJobDefinition=definition(bucket, {**FAST, "max_depth": "3"}))
    assert "objective metric" in refused(HyperParameterTuningJobConfig=config("Random", {
        "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.2"}]}, max_jobs=1))
    assert "training image and input data" in refused(TrainingJobDefinition=definition(bucket, FAST, data="slow"))
    assert "no hyperparameter tuning job" in refused(WarmStartConfig={
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "no-such-parent"}],
        "WarmStartType": "TransferLearning"})


@pytest.mark.slow
def test_several_training_job_definitions(sm, bucket):
    name = unique("multi")
    eta = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.4"}]}
    objective = {"Type": "Maximize", "MetricName": "validation:auc"}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={"Strategy": "Random", "RandomSeed": 2,
                                       "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}},
        TrainingJobDefinitions=[
            definition(bucket, {**FAST, "max_depth": "2"}, name="shallow", TuningObjective=objective,
                       HyperParameterRanges=eta),
            definition(bucket, {**FAST, "max_depth": "6"}, name="deep", TuningObjective=objective,
                       HyperParameterRanges=eta)])
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert [d["DefinitionName"] for d in desc["TrainingJobDefinitions"]] == ["shallow", "deep"]
    trials = all_trials(sm, name)
    assert len(trials) == 6
    depth = {"shallow": "2", "deep": "6"}
    for trial in trials:
        job = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert job["HyperParameters"]["max_depth"] == depth[trial["TrainingJobDefinitionName"]]
    assert desc["BestTrainingJob"]["TrainingJobDefinitionName"] in depth


@pytest.mark.slow
def test_completion_criteria_end_the_job_early(sm, bucket):
    name = unique("target")
    ranges = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.3"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config("Random", ranges, max_jobs=6, parallel=1,
                                             TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.5}),
        TrainingJobDefinition=definition(bucket, FAST))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 1  # AUC >= 0.5 on the first trial


@pytest.mark.slow
def test_a_job_ends_when_the_objective_stops_improving(sm, bucket):
    name = unique("plateau")
    # The thread count changes nothing about the model: after the first trial nothing improves.
    ranges = {"IntegerParameterRanges": [{"Name": "nthread", "MinValue": "1", "MaxValue": "2"}]}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config("Random", ranges, max_jobs=10, parallel=1, TuningJobCompletionCriteria={
            "BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}),
        TrainingJobDefinition=definition(bucket, FAST))
    desc = wait_tuning(sm, name)
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 4
    assert desc["TuningJobCompletionDetails"]["NumberOfTrainingJobsObjectiveNotImproving"] == 3
