"""Model Monitor (data quality): a schedule's execution analyzes the endpoint's captured data against the
baseline, writes statistics.json and constraint_violations.json, and publishes per-feature metrics."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import botocore.exceptions
import pytest
from conftest import unique

from .conftest import FEATURES, read_object

ANALYZER = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
ROLE = "arn:aws:iam::123456789012:role/monitor"
NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"


@pytest.fixture(scope="module")
def baseline(ms3, lab):
    """statistics.json and constraints.json of the baseline data, written by sagelab's profiler."""
    import pyarrow as pa

    from sagelab.profiling import profile
    from sagelab.profiling.monitor_formats import write_baseline

    rows = lab["baseline_rows"]
    table = pa.table({"a": rows[:, 0], "b": rows[:, 1], "c": rows[:, 2].astype(int)})
    with tempfile.TemporaryDirectory() as folder:
        stats, constraints = write_baseline(profile(table), Path(folder))
        for path in (stats, constraints):
            ms3.upload_file(str(path), lab["bucket"], f"baseline/files/{path.name}")
    prefix = f"s3://{lab['bucket']}/baseline/files"
    return {"statistics": f"{prefix}/statistics.json", "constraints": f"{prefix}/constraints.json"}


def definition_request(name: str, endpoint: str, bucket: str, baseline: dict[str, str]) -> dict:
    return {"JobDefinitionName": name,
            "DataQualityAppSpecification": {"ImageUri": ANALYZER},
            "DataQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": baseline["constraints"]},
                                          "StatisticsResource": {"S3Uri": baseline["statistics"]}},
            "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint,
                                                      "LocalPath": "/opt/ml/processing/input/endpoint"}},
            "DataQualityJobOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                "S3Uri": f"s3://{bucket}/reports", "LocalPath": "/opt/ml/processing/output",
                "S3UploadMode": "EndOfJob"}}]},
            "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 10}},
            "RoleArn": ROLE, "StoppingCondition": {"MaxRuntimeInSeconds": 600}}


def wait_execution(msm, schedule: str, final: bool = True) -> dict:
    for _ in range(300):
        found = msm.list_monitoring_executions(MonitoringScheduleName=schedule)["MonitoringExecutionSummaries"]
        if found and (not final or found[0]["MonitoringExecutionStatus"] not in ("Pending", "InProgress")):
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"schedule {schedule} ran no execution to its end")


@pytest.mark.slow
def test_a_drifted_window_completes_with_violations_and_metrics(msm, ms3, monitor_server, lab, baseline,
                                                                drifted_endpoint):
    definition, schedule = unique("dq-def"), unique("dq-schedule")
    msm.create_data_quality_job_definition(**definition_request(definition, drifted_endpoint, lab["bucket"],
                                                                 baseline))
    described = msm.describe_data_quality_job_definition(JobDefinitionName=definition)
    assert described["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == drifted_endpoint
    assert described["JobDefinitionArn"].endswith(f":data-quality-job-definition/{definition}")
    listed = msm.list_data_quality_job_definitions(EndpointName=drifted_endpoint)["JobDefinitionSummaries"]
    assert [d["MonitoringJobDefinitionName"] for d in listed] == [definition]

    arn = msm.create_monitoring_schedule(MonitoringScheduleName=schedule, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT24H",
                           "DataAnalysisEndTime": "PT1H"},
        "MonitoringJobDefinitionName": definition, "MonitoringType": "DataQuality"})["MonitoringScheduleArn"]
    assert arn.endswith(f":monitoring-schedule/{schedule}")
    execution = wait_execution(msm, schedule)
    assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")
    assert execution["EndpointName"] == drifted_endpoint
    assert execution["MonitoringJobDefinitionName"] == definition

    job = msm.describe_processing_job(ProcessingJobName=execution["ProcessingJobArn"].rsplit("/", 1)[1])
    assert job["ProcessingJobName"].startswith("model-monitoring-")
    assert job["ExitMessage"].startswith("CompletedWithViolations: Job completed successfully with")
    output = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert f"/reports/{drifted_endpoint}/{schedule}/" in output
    key = output.partition(f"s3://{lab['bucket']}/")[2]
    violations = json.loads(read_object(ms3, lab["bucket"], f"{key}/constraint_violations.json"))["violations"]
    drift = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    assert drift == {"a"}, violations
    statistics = json.loads(read_object(ms3, lab["bucket"], f"{key}/statistics.json"))
    assert statistics["dataset"]["item_count"] == 100
    assert [f["name"] for f in statistics["features"]] == list(FEATURES)

    cw = monitor_server.client("cloudwatch")
    metrics = cw.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "MonitoringSchedule", "Value": schedule}])
    names = {m["MetricName"] for m in metrics["Metrics"]}
    assert {"feature_baseline_drift_a", "feature_baseline_drift_b", "feature_non_null_a"} <= names
    points = cw.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="feature_baseline_drift_a", Statistics=["Maximum"], Period=60,
        StartTime=time.time() - 7200, EndTime=time.time() + 3600,
        Dimensions=[{"Name": "Endpoint", "Value": drifted_endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}])
    assert points["Datapoints"] and points["Datapoints"][0]["Maximum"] > 0.5

    desc = msm.describe_monitoring_schedule(MonitoringScheduleName=schedule)
    assert desc["MonitoringScheduleStatus"] == "Scheduled" and desc["EndpointName"] == drifted_endpoint
    assert desc["LastMonitoringExecutionSummary"]["MonitoringExecutionStatus"] == "CompletedWithViolations"
    summaries = msm.list_monitoring_schedules(EndpointName=drifted_endpoint)["MonitoringScheduleSummaries"]
    assert [s["MonitoringScheduleName"] for s in summaries] == [schedule]
    assert summaries[0]["MonitoringJobDefinitionName"] == definition

    msm.stop_monitoring_schedule(MonitoringScheduleName=schedule)
    assert msm.describe_monitoring_schedule(MonitoringScheduleName=schedule)["MonitoringScheduleStatus"] == "Stopped"
    with pytest.raises(botocore.exceptions.ClientError) as in_use:
        msm.delete_data_quality_job_definition(JobDefinitionName=definition)
    assert in_use.value.response["Error"]["Code"] == "ResourceInUse"
    msm.delete_monitoring_schedule(MonitoringScheduleName=schedule)
    msm.delete_data_quality_job_definition(JobDefinitionName=definition)
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        msm.describe_monitoring_schedule(MonitoringScheduleName=schedule)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.slow
def test_an_hourly_schedule_fires_every_schedule_hour(msm, lab, baseline, drifted_endpoint):
    definition, schedule = unique("dq-def"), unique("hourly")
    msm.create_data_quality_job_definition(**definition_request(definition, drifted_endpoint, lab["bucket"],
                                                                 baseline))
    msm.create_monitoring_schedule(MonitoringScheduleName=schedule, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)", "DataAnalysisStartTime": "-PT24H"},
        "MonitoringJobDefinitionName": definition})
    first = wait_execution(msm, schedule, final=False)
    assert first["ScheduledTime"].timestamp() % 4 == pytest.approx(0, abs=0.01)  # the top of a 4 s schedule hour
    msm.stop_monitoring_schedule(MonitoringScheduleName=schedule)
    done = wait_execution(msm, schedule)
    assert done["MonitoringExecutionStatus"] == "CompletedWithViolations", done.get("FailureReason")
    msm.delete_monitoring_schedule(MonitoringScheduleName=schedule)
    msm.delete_data_quality_job_definition(JobDefinitionName=definition)


@pytest.mark.parametrize(("schedule_config", "named"), [
    ({"ScheduleExpression": "cron(30 * ? * * *)"}, "minute field must be 0"),
    ({"ScheduleExpression": "rate(1 hour)"}, "ScheduleExpression"),
    ({"ScheduleExpression": "NOW"}, "DataAnalysisStartTime and DataAnalysisEndTime"),
    ({"ScheduleExpression": "NOW", "DataAnalysisStartTime": "an hour ago", "DataAnalysisEndTime": "PT0H"},
     "DataAnalysisStartTime"),
])
def test_a_bad_schedule_is_refused_naming_what_is_wrong(msm, lab, baseline, schedule_config, named):
    definition = unique("dq-def")
    msm.create_data_quality_job_definition(**definition_request(definition, "some-endpoint", lab["bucket"], baseline))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        msm.create_monitoring_schedule(MonitoringScheduleName=unique("bad"), MonitoringScheduleConfig={
            "ScheduleConfig": schedule_config, "MonitoringJobDefinitionName": definition})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert named in caught.value.response["Error"]["Message"]
    msm.delete_data_quality_job_definition(JobDefinitionName=definition)


def test_an_execution_over_an_endpoint_that_is_gone_fails_saying_why(msm, lab, baseline):
    definition, schedule = unique("dq-def"), unique("orphan")
    msm.create_data_quality_job_definition(**definition_request(definition, "no-such-endpoint", lab["bucket"],
                                                                 baseline))
    msm.create_monitoring_schedule(MonitoringScheduleName=schedule, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT1H",
                           "DataAnalysisEndTime": "PT0H"}, "MonitoringJobDefinitionName": definition})
    execution = wait_execution(msm, schedule)
    assert execution["MonitoringExecutionStatus"] == "Failed"
    assert "no-such-endpoint does not exist" in execution["FailureReason"]
    assert "ProcessingJobArn" not in execution
    failed = msm.list_monitoring_executions(MonitoringScheduleName=schedule, StatusEquals="Failed")
    assert len(failed["MonitoringExecutionSummaries"]) == 1
    assert msm.list_monitoring_executions(MonitoringScheduleName=schedule,
                                          StatusEquals="Completed")["MonitoringExecutionSummaries"] == []
    msm.delete_monitoring_schedule(MonitoringScheduleName=schedule)
    assert msm.list_monitoring_executions(MonitoringScheduleName=schedule)["MonitoringExecutionSummaries"] == []
    msm.delete_data_quality_job_definition(JobDefinitionName=definition)
