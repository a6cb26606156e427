"""Tuning requests AWS refuses are refused here too, with the field, what was expected and what came."""

from __future__ import annotations

import contextlib
import copy
import re

import botocore.exceptions
import pytest
from conftest import unique
from tuning_helpers import config, definition

BUCKET = "validation-bucket"  # nothing runs: every request below is refused before a trial starts
STATIC = {"num_round": "5", "objective": "binary:logistic"}
ETA = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.3"}]}


def _request(**overrides) -> dict:
    request = {"HyperParameterTuningJobName": unique("bad"),
               "HyperParameterTuningJobConfig": config("Random", copy.deepcopy(ETA), max_jobs=4),
               "TrainingJobDefinition": definition(BUCKET, dict(STATIC))}
    request.update(overrides)
    return request


def _ranges(**ranges) -> dict:
    return {f"{kind}ParameterRanges": items for kind, items in ranges.items()}


def _with_config(**changes) -> dict:
    cfg = config("Random", copy.deepcopy(ETA), max_jobs=4)
    cfg.update(changes)
    return _request(HyperParameterTuningJobConfig=cfg)


def _hyperband(strategy_config: dict | None = None, **changes) -> dict:
    cfg = config("Hyperband", copy.deepcopy(ETA), max_jobs=4, **changes)
    if strategy_config is not None:
        cfg["StrategyConfig"] = {"HyperbandStrategyConfig": strategy_config}
    return _request(HyperParameterTuningJobConfig=cfg)


CASES = {
    "name longer than 32": (_request(HyperParameterTuningJobName="t" * 33), "ValidationException",
                            "hyperParameterTuningJobName"),
    "name with underscore": (_request(HyperParameterTuningJobName="bad_name"), "ValidationException",
                             "regular expression"),
    "grid with a continuous range": (_request(HyperParameterTuningJobConfig=config("Grid", copy.deepcopy(ETA))),
                                     "ValidationException", "only CategoricalParameterRanges"),
    "grid with the wrong job count": (
        _request(HyperParameterTuningJobConfig=config("Grid", _ranges(Categorical=[
            {"Name": "max_depth", "Values": ["2", "3"]}]), max_jobs=3)),
        "ValidationException", "must equal the number of distinct combinations"),
    "random without a job count": (_request(HyperParameterTuningJobConfig=config("Random", copy.deepcopy(ETA))),
                                   "ValidationException", "MaxNumberOfTrainingJobs is required"),
    "too many parallel jobs": (_request(HyperParameterTuningJobConfig=config("Random", copy.deepcopy(ETA),
                                                                             max_jobs=20, parallel=11)),
                               "ResourceLimitExceeded", "MaxParallelTrainingJobs"),
    "too many jobs": (_request(HyperParameterTuningJobConfig=config("Random", copy.deepcopy(ETA), max_jobs=751)),
                      "ResourceLimitExceeded", "750"),
    "metric the algorithm does not emit": (
        _request(HyperParameterTuningJobConfig=config("Random", copy.deepcopy(ETA), max_jobs=2,
                                                      metric="validation:accuracy-ish")),
        "ValidationException", "not a metric of xgboost"),
    "metric on a missing channel": (
        _request(TrainingJobDefinition={**definition(BUCKET, dict(STATIC)), "InputDataConfig": [
            definition(BUCKET, STATIC)["InputDataConfig"][0]]}),
        "ValidationException", "'validation' channel"),
    "no objective": (_with_config(HyperParameterTuningJobObjective=None), "ValidationException",
                     "HyperParameterTuningJobObjective"),
    "no ranges": (_with_config(ParameterRanges={}), "ValidationException", "at least one parameter range"),
    "logarithmic from zero": (
        _with_config(ParameterRanges=_ranges(Continuous=[
            {"Name": "eta", "MinValue": "0", "MaxValue": "0.3", "ScalingType": "Logarithmic"}])),
        "ValidationException", "Logarithmic needs a range of values greater than 0"),
    "reverse logarithmic integer": (
        _with_config(ParameterRanges=_ranges(Integer=[
            {"Name": "max_depth", "MinValue": "1", "MaxValue": "5", "ScalingType": "ReverseLogarithmic"}])),
        "ValidationException", "continuous ranges only"),
    "reverse logarithmic reaching one": (
        _with_config(ParameterRanges=_ranges(Continuous=[
            {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "ReverseLogarithmic"}])),
        "ValidationException", "0 <= x < 1"),
    "min above max": (
        _with_config(ParameterRanges=_ranges(Continuous=[{"Name": "eta", "MinValue": "0.5", "MaxValue": "0.1"}])),
        "ValidationException", "must not be greater than MaxValue"),
    "integer range with a fraction": (
        _with_config(ParameterRanges=_ranges(Integer=[{"Name": "max_depth", "MinValue": "1.5", "MaxValue": "4"}])),
        "ValidationException", "must be an integer, got '1.5'"),
    "range beyond the algorithm's limits": (
        _with_config(ParameterRanges=_ranges(Continuous=[{"Name": "eta", "MinValue": "0.1", "MaxValue": "2"}])),
        "ValidationException", "range value '2.0' is not valid for xgboost"),
    "range over an unknown hyperparameter": (
        _with_config(ParameterRanges=_ranges(Continuous=[{"Name": "learning_speed", "MinValue": "0.1",
                                                          "MaxValue": "0.2"}])),
        "ValidationException", "'learning_speed' is not supported"),
    "repeated categorical values": (
        _with_config(ParameterRanges=_ranges(Categorical=[{"Name": "max_depth", "Values": ["2", "2"]}])),
        "ValidationException", "Values must be distinct"),
    "static and tunable": (
        _request(TrainingJobDefinition=definition(BUCKET, {**STATIC, "eta": "0.2"})),
        "ValidationException", "both static"),
    "hyperband with early stopping": (_hyperband({"MinResource": 1, "MaxResource": 5},
                                                 TrainingJobEarlyStoppingType="Auto"),
                                      "ValidationException", "must be Off with the Hyperband strategy"),
    "hyperband without a max resource": (_hyperband(), "ValidationException", "MaxResource is required"),
    "hyperband min above max": (_hyperband({"MinResource": 10, "MaxResource": 5}), "ValidationException",
                                "must not exceed MaxResource"),
    "hyperband max resource too large": (_hyperband({"MaxResource": 20001}), "ValidationException",
                                         "at most 20000"),
    "strategy config without hyperband": (
        _with_config(StrategyConfig={"HyperbandStrategyConfig": {"MaxResource": 5}}),
        "ValidationException", "applies to the Hyperband strategy only"),
    "both kinds of definition": (
        _request(TrainingJobDefinitions=[definition(BUCKET, dict(STATIC), name="one")]),
        "ValidationException", "not both"),
    "definitions without names": (
        _request(TrainingJobDefinition=None, TrainingJobDefinitions=[definition(BUCKET, dict(STATIC))]),
        "ValidationException", "DefinitionName is required"),
    "unknown parent": (
        _request(WarmStartConfig={"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "nobody"}],
                                  "WarmStartType": "IdenticalDataAndAlgorithm"}),
        "ValidationException", "no hyperparameter tuning job has this name"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused(sm, case):
    request, code, fragment = CASES[case]
    request = {k: v for k, v in copy.deepcopy(request).items() if v is not None}
    if request["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") is None:
        request["HyperParameterTuningJobConfig"].pop("HyperParameterTuningJobObjective", None)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**request)
    assert err.value.response["Error"]["Code"] == code
    assert fragment in err.value.response["Error"]["Message"]
    name = request["HyperParameterTuningJobName"]
    if re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", name):  # nothing was created
        with pytest.raises(botocore.exceptions.ClientError) as err:
            sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        assert err.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.parametrize("operation", ["describe_hyper_parameter_tuning_job", "stop_hyper_parameter_tuning_job",
                                       "list_training_jobs_for_hyper_parameter_tuning_job"])
def test_unknown_tuning_job(sm, operation):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        getattr(sm, operation)(HyperParameterTuningJobName="no-such-tuning-job")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    assert "no-such-tuning-job" in err.value.response["Error"]["Message"]


def _stop(sm, name: str) -> None:
    # Its trials fail at once (no such bucket): the job may have ended before the stop arrives.
    with contextlib.suppress(botocore.exceptions.ClientError):
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)


def test_names_are_unique_case_insensitively_and_list_pages(sm):
    name = unique("dup")
    sm.create_hyper_parameter_tuning_job(**_request(HyperParameterTuningJobName=name))
    try:
        for again in (name, name.upper()):
            with pytest.raises(botocore.exceptions.ClientError) as err:
                sm.create_hyper_parameter_tuning_job(**_request(HyperParameterTuningJobName=again))
            assert err.value.response["Error"]["Code"] == "ResourceInUse"
    finally:
        _stop(sm, name)
    others = [unique("pages") for _ in range(3)]
    for other in others:
        sm.create_hyper_parameter_tuning_job(**_request(HyperParameterTuningJobName=other))
        _stop(sm, other)
    seen, token = [], None
    while True:
        page = sm.list_hyper_parameter_tuning_jobs(NameContains="pages-", MaxResults=2,
                                                   **({"NextToken": token} if token else {}))
        seen += [s["HyperParameterTuningJobName"] for s in page["HyperParameterTuningJobSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert [n for n in seen if n in others] == sorted(others)  # default order: Name, ascending
    newest_first = sm.list_hyper_parameter_tuning_jobs(NameContains="pages-", SortBy="CreationTime",
                                                       SortOrder="Descending", MaxResults=100)
    ordered = [s["HyperParameterTuningJobName"] for s in newest_first["HyperParameterTuningJobSummaries"]
               if s["HyperParameterTuningJobName"] in others]
    assert ordered == list(reversed(others))


def test_a_grid_too_large_to_run_is_refused_without_listing_it(sm):
    ranges = {"CategoricalParameterRanges": [{"Name": name, "Values": [str(v) for v in values]} for name, values in [
        ("max_depth", range(1, 31)), ("min_child_weight", range(30)), ("gamma", range(30)), ("alpha", range(30)),
        ("lambda", range(30)), ("max_delta_step", range(30)), ("max_bin", range(256, 286)),
        ("num_parallel_tree", range(1, 31))]]}
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**_request(HyperParameterTuningJobConfig=config("Grid", ranges)))
    assert err.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert "656100000000 training jobs" in err.value.response["Error"]["Message"]
