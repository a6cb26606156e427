"""The definition library on its own: property paths, expressions, conditions, durations and job names."""

from __future__ import annotations

import json

import pytest

from sagelab.errors import ValidationError
from sagelab.pipelines import properties
from sagelab.pipelines.caching import parse_duration
from sagelab.pipelines.definition import parse_definition
from sagelab.pipelines.expressions import Scope
from sagelab.pipelines.steps import job_name

PROPS = {"Prepare": {"ProcessingOutputConfig": {"Outputs": [
    {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
    {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test"}}]}},
    "Train": {"FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.91}],
              "HyperParameters": {"eta": "0.3"}}}
FILES = {("Evaluate", "Report"): {"metrics": {"mse": {"value": 12.5}}, "list": [3, 4]}}


def scope(**parameters) -> Scope:
    return Scope(parameters=parameters, variables={"PipelineExecutionId": "abc123"},
                 step_properties=lambda step: PROPS[step], property_file=lambda step, name: FILES[(step, name)],
                 read_json=lambda uri: {"uri": uri})


def test_gets_read_lists_by_position_and_by_the_name_their_elements_carry():
    s = scope()
    assert s.resolve({"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}) == "s3://b/test"
    assert s.resolve({"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}) == "s3://b/train"
    assert s.resolve({"Get": "Steps.Train.FinalMetricDataList['validation:auc'].Value"}) == 0.91
    assert s.resolve({"Get": "Steps.Train.HyperParameters['eta']"}) == "0.3"
    with pytest.raises(ValidationError, match="no FinalMetricDataList\\['train:auc'\\]"):
        s.resolve({"Get": "Steps.Train.FinalMetricDataList['train:auc'].Value"})


def test_join_and_json_get_nest_inside_arguments():
    s = scope(Threshold=1.5, Flag=True)
    value = {"Uri": {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"},
                                                        {"Get": "Parameters.Threshold"}, {"Get": "Parameters.Flag"}]}},
             "Mse": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"},
                                     "Path": "metrics.mse.value"}},
             "Second": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"},
                                        "Path": "list[1]"}},
             "FromS3": {"Std:JsonGet": {"S3Uri": "s3://b/x.json", "Path": "uri"}}}
    assert s.resolve(value) == {"Uri": "s3://b/abc123/1.5/true", "Mse": 12.5, "Second": 4, "FromS3": "s3://b/x.json"}


@pytest.mark.parametrize(("condition", "holds"), [
    ({"Type": "LessThanOrEqualTo", "LeftValue": 12.5, "RightValue": {"Get": "Parameters.Limit"}}, True),
    ({"Type": "GreaterThan", "LeftValue": "3", "RightValue": 2}, True),
    ({"Type": "Equals", "LeftValue": 2, "RightValue": 2.0}, True),
    ({"Type": "Equals", "LeftValue": "a", "RightValue": "b"}, False),
    ({"Type": "In", "QueryValue": "b", "Values": ["a", "b"]}, True),
    ({"Type": "Not", "Condition": {"Type": "In", "QueryValue": "c", "Values": ["a"]}}, True),
    ({"Type": "Or", "Conditions": [{"Type": "LessThan", "LeftValue": 3, "RightValue": 1},
                                   {"Type": "GreaterThanOrEqualTo", "LeftValue": 1, "RightValue": 1}]}, True),
])
def test_conditions(condition, holds):
    assert scope(Limit=20).holds(condition) is holds


def test_a_comparison_of_something_that_is_not_a_number_says_so():
    with pytest.raises(ValidationError, match="'high' is not a number"):
        scope().holds({"Type": "LessThan", "LeftValue": "high", "RightValue": 1})


def test_paths_are_checked_against_the_describe_shapes():
    check = properties.check_path
    check("Training", properties.parse_path("ModelArtifacts.S3ModelArtifacts", where="x"), where="x")
    check("Tuning", properties.parse_path("TrainingJobSummaries[0].TrainingJobName", where="x"), where="x")
    check("RegisterModel", properties.parse_path("ModelPackageArn", where="x"), where="x")
    check("Processing", properties.parse_path("ProcessingOutputConfig.Outputs['a'].S3Output.S3Uri", where="x"),
          where="x")
    with pytest.raises(ValidationError, match="has no property 'Outcome'"):
        check("Training", properties.parse_path("Outcome", where="x"), where="x")
    with pytest.raises(ValidationError, match="cannot be indexed"):
        check("Training", properties.parse_path("ModelArtifacts[0]", where="x"), where="x")


def test_branch_steps_depend_on_their_condition_and_what_they_read():
    text = json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": [
        {"Name": "Train", "Type": "Training", "Arguments": {}},
        {"Name": "Check", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}],
            "IfSteps": [{"Name": "Model", "Type": "Model", "Arguments": {"PrimaryContainer": {
                "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}}}],
            "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}}]})
    steps = parse_definition(text).steps
    assert steps["Model"].upstream == {"Check", "Train"} and steps["Model"].gate == ("Check", True)
    assert steps["Stop"].gate == ("Check", False)


def test_durations_and_job_names():
    assert parse_duration("PT1H", where="x") == 3600 and parse_duration("P1DT30M", where="x") == 88200
    for bad in ("1h", "P", "PT", "P1DT"):
        with pytest.raises(ValidationError, match="ISO 8601"):
            parse_duration(bad, where="x")
    assert job_name("abcdefabcdef", "Train Model!", 1, "12345678", 63) == "pipelines-abcdefabcdef-train-model-12345678"
    tuning = job_name("abcdefabcdef", "TuneTheModel", 2, "12345678", 32)
    assert len(tuning) <= 32 and tuning.endswith("-2-12345678")


def test_retry_policies_cover_only_the_faults_they_name():
    from sagelab.pipelines.retries import call_fault, job_fault, parse_policies, policy_for

    policies = parse_policies([{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 2,
                                "BackoffRate": 3.0, "MaxAttempts": 2}], "Training", "Step 'Train'")
    internal = job_fault("The task process died (exit code -9).")
    assert internal == "SageMaker.JOB_INTERNAL_ERROR" and policy_for(policies, internal) is policies[0]
    assert job_fault("AlgorithmError: bad data") is None and job_fault("ClientError: bad request") is None
    assert policy_for(policies, call_fault("ResourceLimitExceeded")) is None
    assert [policies[0].delay(n) for n in range(3)] == [2.0, 6.0, 18.0]
    assert policies[0].allows(1, started=0, now=0) and not policies[0].allows(2, started=0, now=0)
    timed = parse_policies([{"ExceptionType": ["Step.SERVICE_FAULT"], "ExpireAfterMin": 1}], "Model", "Step 'M'")[0]
    assert timed.allows(50, started=0, now=59) and not timed.allows(0, started=0, now=61)
    with pytest.raises(ValidationError, match="for a Model step"):
        parse_policies([{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "MaxAttempts": 1}], "Model", "Step 'M'")
    with pytest.raises(ValidationError, match="exactly one of MaxAttempts and ExpireAfterMin"):
        parse_policies([{"ExceptionType": ["Step.THROTTLING"]}], "Training", "Step 'T'")
