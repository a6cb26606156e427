"""The SageMaker SDK's DefaultModelMonitor, unchanged: suggest_baseline, then a one-time schedule over the
endpoint's captured data, read back through the SDK's own objects."""

from __future__ import annotations

import time

import pytest
import sagemaker  # a test extra: a missing SDK must fail, not skip
from conftest import unique

ROLE = "arn:aws:iam::123456789012:role/monitor"


@pytest.mark.slow
def test_default_model_monitor_baselines_and_monitors_an_endpoint(lab, msm, drifted_endpoint, monitor_sdk_env):
    from sagemaker.model_monitor import CronExpressionGenerator, DefaultModelMonitor
    from sagemaker.model_monitor.dataset_format import DatasetFormat

    endpoint = drifted_endpoint
    session = sagemaker.Session()
    monitor = DefaultModelMonitor(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                  sagemaker_session=session, max_runtime_in_seconds=600)
    bucket = lab["bucket"]
    monitor.suggest_baseline(baseline_dataset=f"s3://{bucket}/baseline/data.csv",
                             dataset_format=DatasetFormat.csv(header=True),
                             output_s3_uri=f"s3://{bucket}/sdk-baseline", wait=False, logs=False)
    # Waited for here rather than by the SDK, which looks every 5 s.
    msm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=monitor.latest_baselining_job_name, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    constraints = monitor.suggested_constraints()
    assert {f["name"] for f in constraints.body_dict["features"]} == {"a", "b", "c"}

    schedule = unique("sdk-schedule")
    monitor.create_monitoring_schedule(
        monitor_schedule_name=schedule, endpoint_input=endpoint, output_s3_uri=f"s3://{bucket}/sdk-reports",
        statistics=monitor.baseline_statistics(), constraints=constraints,
        schedule_cron_expression=CronExpressionGenerator.now(), data_analysis_start_time="-PT24H",
        data_analysis_end_time="PT1H", enable_cloudwatch_metrics=True)
    assert monitor.describe_schedule()["MonitoringScheduleStatus"] == "Scheduled"
    for _ in range(300):
        executions = monitor.list_executions()
        if executions and executions[-1].describe()["ProcessingJobStatus"] in ("Completed", "Failed"):
            break
        time.sleep(0.3)
    execution = executions[-1]
    assert execution.describe()["ProcessingJobStatus"] == "Completed", execution.describe().get("FailureReason")
    violations = execution.constraint_violations().body_dict["violations"]
    assert any(v["feature_name"] == "a" and v["constraint_check_type"] == "baseline_drift_check" for v in violations)
    assert execution.statistics().body_dict["dataset"]["item_count"] == 100
    monitor.stop_monitoring_schedule()
    monitor.delete_monitoring_schedule()
