"""SageMaker Pipelines through real boto3 clients: the pipeline resource, bad definitions refused at the
boundary, executions run as DAGs of real jobs (parallel branches, conditions, failures, stop, retry,
caching)."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from conftest import unique
from helpers import ROLE, upload_breast_cancer
from pipeline_helpers import (
    XGB,
    definition,
    processing_step,
    put_script,
    s3_input,
    s3_output,
    steps_of,
    training_step,
    wait_execution,
)

FAIL = {"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
    "On": " ", "Values": ["threshold was", {"Get": "Parameters.Threshold"}]}}}}


@pytest.fixture(scope="module")
def data_bucket(s3, tmp_path_factory) -> str:
    name = unique("pipelines")
    s3.create_bucket(Bucket=name)
    upload_breast_cancer(s3, name, tmp_path_factory.mktemp("data"))
    return name


def create(sm, steps: list[dict], parameters: list[dict] | None = None, **extra) -> str:
    name = unique("pl")
    sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=definition(steps, parameters), **extra)
    return name


def refused(sm, steps: list[dict], parameters: list[dict] | None = None) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(sm, steps, parameters)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return caught.value.response["Error"]["Message"]


# --- the pipeline resource -----------------------------------------------------------------------------
def test_create_describe_update_list_and_delete(sm):
    steps = [FAIL]
    parameters = [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}]
    name = create(sm, steps, parameters, PipelineDescription="first", Tags=[{"Key": "team", "Value": "ml"}])
    desc = sm.describe_pipeline(PipelineName=name)
    assert desc["PipelineArn"].endswith(f":pipeline/{name}") and desc["PipelineStatus"] == "Active"
    assert json.loads(desc["PipelineDefinition"])["Steps"] == steps
    assert desc["PipelineDescription"] == "first" and desc["RoleArn"] == ROLE
    assert sm.list_tags(ResourceArn=desc["PipelineArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=definition(steps, parameters))
    # Pipeline.upsert() falls back to UpdatePipeline on exactly this code and phrase.
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "already exists" in caught.value.response["Error"]["Message"]

    updated = sm.update_pipeline(PipelineName=name, PipelineDescription="second",
                                 PipelineDefinition=definition([{**FAIL, "Name": "Stop2"}], parameters))
    assert updated["PipelineVersionId"] == 2
    desc = sm.describe_pipeline(PipelineName=desc["PipelineArn"])  # by ARN too
    assert desc["PipelineDescription"] == "second" and "Stop2" in desc["PipelineDefinition"]
    listed = sm.list_pipelines(PipelineNamePrefix=name)["PipelineSummaries"]
    assert [p["PipelineName"] for p in listed] == [name]

    assert sm.delete_pipeline(PipelineName=name)["PipelineArn"] == desc["PipelineArn"]
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_pipeline(PipelineName=name)
    assert sm.list_pipelines(PipelineNamePrefix=name)["PipelineSummaries"] == []


def test_a_definition_can_come_from_s3(sm, s3, bucket):
    text = definition([FAIL], [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}])
    s3.put_object(Bucket=bucket, Key="definitions/big.json", Body=text.encode())
    name = unique("pl-s3")
    sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinitionS3Location={
        "Bucket": bucket, "ObjectKey": "definitions/big.json"})
    assert sm.describe_pipeline(PipelineName=name)["PipelineDefinition"] == text
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.create_pipeline(PipelineName=unique("pl-s3"), RoleArn=ROLE, PipelineDefinitionS3Location={
            "Bucket": bucket, "ObjectKey": "definitions/missing.json"})
    assert "definitions/missing.json cannot be read" in caught.value.response["Error"]["Message"]


def test_a_mixed_case_pipeline_is_reached_by_its_lower_case_arn(sm):
    name = unique("Mixed-Case")
    arn = sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=definition(
        [FAIL], [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}]))["PipelineArn"]
    assert arn.endswith(f":pipeline/{name.lower()}")
    assert sm.describe_pipeline(PipelineName=arn)["PipelineName"] == name
    execution = sm.start_pipeline_execution(PipelineName=arn)["PipelineExecutionArn"]
    assert execution.startswith(f"{arn}/execution/")
    assert wait_execution(sm, execution)["PipelineExecutionStatus"] == "Failed"  # its only step is a Fail step
    with pytest.raises(botocore.exceptions.ClientError, match="already exists"):
        sm.create_pipeline(PipelineName=name.lower(), RoleArn=ROLE, PipelineDefinition=definition([FAIL], [
            {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}]))


# --- bad definitions -------------------------------------------------------------------------------------
def test_a_reference_to_an_unknown_step_is_refused_naming_it(sm, data_bucket):
    train = training_step("Train", data_bucket)
    train["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    message = refused(sm, [train])
    assert "Train" in message and "'Prepare'" in message and "not a step of this pipeline" in message


def test_a_reference_to_an_unknown_property_is_refused_naming_it(sm, data_bucket):
    fail = {"Name": "Report", "Type": "Fail", "Arguments": {"ErrorMessage": {
        "Get": "Steps.Train.ModelArtifact.S3ModelArtifacts"}}}
    message = refused(sm, [training_step("Train", data_bucket), fail])
    assert "'ModelArtifact'" in message and "Training step" in message
    nested = {**fail, "Arguments": {"ErrorMessage": {"Get": "Steps.Train.ModelArtifacts.S3Uri"}}}
    assert "ModelArtifacts has no member 'S3Uri'" in refused(sm, [training_step("Train", data_bucket), nested])


def test_a_cycle_is_refused_naming_its_steps(sm, data_bucket):
    first = training_step("First", data_bucket, DependsOn=["Second"])
    second = training_step("Second", data_bucket, DependsOn=["First"])
    message = refused(sm, [first, second])
    assert "cycle" in message and "First -> Second -> First" in message


def test_parameters_of_the_wrong_type_are_refused(sm):
    message = refused(sm, [FAIL], [{"Name": "Threshold", "Type": "Integer", "DefaultValue": "high"}])
    assert "'Threshold'" in message and "Integer" in message
    assert "'Missing'" in refused(sm, [{**FAIL, "Arguments": {"ErrorMessage": {"Get": "Parameters.Missing"}}}])
    assert "Type must be one of" in refused(sm, [FAIL], [{"Name": "Threshold", "Type": "Date"}])
    assert "DependsOn names 'Nowhere'" in refused(sm, [{**FAIL, "DependsOn": ["Nowhere"]}])


def test_start_refuses_an_override_of_the_wrong_type_or_an_unknown_parameter(sm):
    name = create(sm, [FAIL], [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
                               {"Name": "Rounds", "Type": "Integer", "DefaultValue": 3}])
    for overrides, expected in (([{"Name": "Rounds", "Value": "many"}], "'Rounds' is Integer"),
                                ([{"Name": "Threshold", "Value": "x"}], "'Threshold' is Float"),
                                ([{"Name": "Depth", "Value": "3"}], "no parameter 'Depth'")):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            sm.start_pipeline_execution(PipelineName=name, PipelineParameters=overrides)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert expected in caught.value.response["Error"]["Message"]
    assert sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] == []


# --- executions ------------------------------------------------------------------------------------------
def test_parallel_branches_a_condition_and_the_else_branch(sm, data_bucket):
    """Two trainings run side by side; the condition reads a parameter and a training job's property."""
    condition = {"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo",
                        "LeftValue": {"Get": "Steps.Deep.FinalMetricDataList['validation:auc'].Value"},
                        "RightValue": {"Get": "Parameters.Threshold"}}],
        "IfSteps": [{"Name": "Model", "Type": "Model", "Arguments": {
            "ExecutionRoleArn": ROLE, "PrimaryContainer": {
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                "ModelDataUrl": {"Get": "Steps.Deep.ModelArtifacts.S3ModelArtifacts"}}}}],
        "ElseSteps": [FAIL]}}
    name = create(sm, [training_step("Shallow", data_bucket), training_step("Deep", data_bucket,
                                                                           {**XGB_DEEP}), condition],
                  [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    desc = wait_execution(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
    steps = steps_of(sm, arn)
    assert set(steps) == {"Shallow", "Deep", "Check", "Model"}  # the else branch never ran
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    shallow, deep = steps["Shallow"], steps["Deep"]
    assert shallow["StartTime"] < deep["EndTime"] and deep["StartTime"] < shallow["EndTime"]  # side by side
    job = deep["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    model = sm.describe_model(ModelName=steps["Model"]["Metadata"]["Model"]["Arn"].rsplit("/", 1)[-1])
    artifacts = sm.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == artifacts
    assert {"Name": "Threshold", "Value": "0.5"} in sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=arn)["PipelineParameters"]

    strict = sm.start_pipeline_execution(PipelineName=name, PipelineParameters=[
        {"Name": "Threshold", "Value": "1.5"}])["PipelineExecutionArn"]
    desc = wait_execution(sm, strict)
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert desc["FailureReason"] == "Step Stop failed: threshold was 1.5"
    steps = steps_of(sm, strict)
    assert steps["Stop"]["StepStatus"] == "Failed" and "Model" not in steps
    assert steps["Stop"]["Metadata"] == {"Fail": {"ErrorMessage": "threshold was 1.5"}}
    executions = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [strict, arn]
    assert executions[0]["PipelineExecutionFailureReason"] == desc["FailureReason"]
    stored = sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"]
    assert stored == sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]


XGB_DEEP = {"objective": "binary:logistic", "num_round": "8", "max_depth": "4", "eval_metric": "auc"}


def test_a_failing_job_fails_the_execution_with_its_reason(sm, data_bucket):
    bad = training_step("Train", data_bucket, {"objective": "binary:logistic", "num_round": "two"})
    after = {**FAIL, "Name": "After", "DependsOn": ["Train"]}
    name = create(sm, [bad, after], [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    desc = wait_execution(sm, arn)
    steps = steps_of(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert set(steps) == {"Train"}  # what depends on it never starts
    assert "num_round" in steps["Train"]["FailureReason"]
    assert desc["FailureReason"] == f"Step Train failed: {steps['Train']['FailureReason']}"


def test_lambda_and_callback_steps_fail_saying_they_are_not_supported(sm):
    lam = {"Name": "Notify", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:f",
           "Arguments": {"x": 1}, "OutputParameters": [{"OutputName": "out", "OutputType": "String"}]}
    name = create(sm, [lam])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    desc = wait_execution(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Failed"
    reason = steps_of(sm, arn)["Notify"]["FailureReason"]
    assert "does not run Lambda steps" in reason and "'Notify'" in reason


SLEEP = """
import time
time.sleep(60)
"""

FLAKY = """
import os
assert os.listdir("/opt/ml/processing/flag")
open("/opt/ml/processing/out/done.txt", "w").write("done")
"""


def test_stop_stops_the_running_job(sm, s3, data_bucket):
    script = put_script(s3, data_bucket, "sleepy", SLEEP)
    name = create(sm, [processing_step("Sleep", script), training_step("After", data_bucket, DependsOn=["Sleep"])])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    job = None
    for _ in range(200):
        step = steps_of(sm, arn).get("Sleep")
        job = step and step["Metadata"].get("ProcessingJob", {}).get("Arn")
        if job:
            break
        __import__("time").sleep(0.1)
    assert sm.stop_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    desc = wait_execution(sm, arn, timeout=60)
    assert desc["PipelineExecutionStatus"] == "Stopped"
    steps = steps_of(sm, arn)
    assert set(steps) == {"Sleep"} and steps["Sleep"]["StepStatus"] == "Stopped"
    assert sm.describe_processing_job(ProcessingJobName=job.rsplit("/", 1)[-1])["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert "only an Executing execution" in caught.value.response["Error"]["Message"]


def running_job(sm, arn: str, step: str) -> str:
    for _ in range(300):
        found = steps_of(sm, arn).get(step, {}).get("Metadata", {}).get("ProcessingJob", {}).get("Arn")
        if found:
            return found.rsplit("/", 1)[-1]
        __import__("time").sleep(0.1)
    raise TimeoutError(step)


def test_a_job_stopped_on_its_own_stops_the_execution_and_deleting_the_pipeline_stops_its_executions(
        sm, s3, data_bucket):
    script = put_script(s3, data_bucket, "sleepy", SLEEP)
    name = create(sm, [processing_step("Sleep", script), training_step("After", data_bucket, DependsOn=["Sleep"])])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    sm.stop_processing_job(ProcessingJobName=running_job(sm, arn, "Sleep"))
    assert wait_execution(sm, arn, timeout=60)["PipelineExecutionStatus"] == "Stopped"
    assert set(steps_of(sm, arn)) == {"Sleep"}

    other = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    job = running_job(sm, other, "Sleep")
    sm.delete_pipeline(PipelineName=name)
    assert wait_execution(sm, other, timeout=60)["PipelineExecutionStatus"] == "Stopped"
    assert sm.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"] == "Stopped"


def test_retry_reruns_the_failed_step_and_keeps_the_succeeded_ones(sm, s3, data_bucket):
    flag = f"s3://{data_bucket}/flags/{unique('flag')}/"
    script = put_script(s3, data_bucket, "flaky", FLAKY)
    flaky = processing_step("Flaky", script, inputs=[s3_input("flag", flag, "/opt/ml/processing/flag")],
                            outputs=[s3_output("out", f"s3://{data_bucket}/flaky-out", "/opt/ml/processing/out")],
                            DependsOn=["Train"])
    name = create(sm, [training_step("Train", data_bucket), flaky])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Failed"
    first = steps_of(sm, arn)
    assert "no S3 objects found" in first["Flaky"]["FailureReason"]  # the input is not there yet

    s3.put_object(Bucket=data_bucket, Key=flag.split("/", 3)[3] + "go.txt", Body=b"go")
    assert sm.retry_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    desc = wait_execution(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
    again = steps_of(sm, arn)
    assert again["Train"] == first["Train"]  # kept, not run again
    assert again["Flaky"]["Metadata"] != first["Flaky"]["Metadata"]
    assert s3.get_object(Bucket=data_bucket, Key="flaky-out/done.txt")["Body"].read() == b"done"


# The first run kills its own job process (the script's parent): a failure of sagelab's, not the script's.
DIES_ONCE = """
import os, signal, sys
marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").write("died once")
    os.kill(os.getppid(), signal.SIGKILL)
"""


def test_a_retry_policy_reruns_a_step_whose_job_failed_for_an_internal_reason(sm, s3, data_bucket, tmp_path):
    script = put_script(s3, data_bucket, "dies-once", DIES_ONCE)
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 0, "BackoffRate": 1.0,
              "MaxAttempts": 2}
    step = processing_step("Flaky", script, arguments=[str(tmp_path / "marker")], RetryPolicies=[policy])
    name = create(sm, [step])
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    desc = wait_execution(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
    flaky = steps_of(sm, arn)["Flaky"]
    assert flaky["AttemptCount"] == 2 and (tmp_path / "marker").exists()
    jobs = sm.list_processing_jobs(NameContains=arn.rsplit("/", 1)[-1])["ProcessingJobSummaries"]
    assert sorted(j["ProcessingJobStatus"] for j in jobs) == ["Completed", "Failed"]

    # Without a policy that covers it, the same failure fails the step; a script's own error is never retried.
    (tmp_path / "marker").unlink()
    bare = create(sm, [processing_step("Flaky", script, arguments=[str(tmp_path / "marker")])])
    arn = sm.start_pipeline_execution(PipelineName=bare)["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Failed"
    assert steps_of(sm, arn)["Flaky"]["AttemptCount"] == 1
    message = refused(sm, [{**step, "RetryPolicies": [{**policy, "ExceptionType": ["SageMaker.OOPS"]}]}])
    assert "ExceptionType must list some of" in message


def test_a_cached_step_reuses_the_earlier_run(sm, data_bucket):
    cached = training_step("Train", data_bucket, CacheConfig={"Enabled": True, "ExpireAfter": "PT1H"})
    model = {"Name": "Model", "Type": "Model", "Arguments": {"PrimaryContainer": {
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}}}
    name = create(sm, [cached, model])
    first = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, first)["PipelineExecutionStatus"] == "Succeeded"
    second = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, second)["PipelineExecutionStatus"] == "Succeeded"
    one, two = steps_of(sm, first), steps_of(sm, second)
    assert "CacheHitResult" not in one["Train"]
    assert two["Train"]["CacheHitResult"] == {"SourcePipelineExecutionArn": first}
    assert two["Train"]["Metadata"] == one["Train"]["Metadata"]
    assert "CacheHitResult" not in two["Model"]  # not cached: it ran, on the earlier run's artifacts

    sm.update_pipeline(PipelineName=name, PipelineDefinition=definition([
        training_step("Train", data_bucket, {**XGB, "num_round": "6"},
                      CacheConfig={"Enabled": True, "ExpireAfter": "PT1H"}), model]))
    third = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_execution(sm, third)["PipelineExecutionStatus"] == "Succeeded"
    assert "CacheHitResult" not in steps_of(sm, third)["Train"]  # other arguments: a run of its own


def test_unknown_executions_are_resource_not_found(sm):
    missing = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/none/execution/abcdefabcdef"
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_pipeline_execution(PipelineExecutionArn=missing)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.start_pipeline_execution(PipelineName=unique("none"))
