"""A training job's metric values land in CloudWatch (`/aws/sagemaker/TrainingJobs`, dimension Host), as
SageMaker publishes them; FinalMetricDataList keeps the last of each."""

from __future__ import annotations

import datetime as dt

from helpers import job_request, upload_breast_cancer, wait_job


def test_training_metrics_are_published(cw_server, cw, tmp_path):
    s3, sm = cw_server.client("s3"), cw_server.client("sagemaker")
    s3.create_bucket(Bucket="cw-training")
    upload_breast_cancer(s3, "cw-training", tmp_path)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    sm.create_training_job(**job_request("cw-job", "xgboost", "cw-training",
                                         {"num_round": "3", "objective": "binary:logistic", "eval_metric": "auc"}))
    desc = wait_job(sm, "cw-job")
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    final = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    host = [{"Name": "Host", "Value": "cw-job/algo-1"}]
    listed = cw.list_metrics(Namespace="/aws/sagemaker/TrainingJobs", Dimensions=host)["Metrics"]
    assert {m["MetricName"] for m in listed} == set(final) and "validation:auc" in final
    [point] = cw.get_metric_statistics(Namespace="/aws/sagemaker/TrainingJobs", MetricName="validation:auc",
                                       Dimensions=host, StartTime=started,
                                       EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1), Period=600,
                                       Statistics=["SampleCount", "Minimum", "Maximum"])["Datapoints"]
    assert point["SampleCount"] == 3  # one value per boosting round
    assert point["Minimum"] <= final["validation:auc"] <= point["Maximum"]
