"""Demo stage: judge the chosen model, register it for approval, deploy the approved package, and score the
held-out rows both through a real-time endpoint and with a batch transform job."""

from __future__ import annotations

import json
import time

import numpy as np

from sagelab.demo.common import BUCKET, ROLE, XGBOOST_IMAGE, csv_rows, wait_for
from sagelab.embedded import ServerProcess

EVALUATOR_IMAGE = "sagelab-evaluator:latest"


def evaluate(sm, s3, name: str, artifact: str, test_prefix: str, out) -> str | None:
    """Score the model on the test split with the evaluator processing image; returns evaluation.json's URI."""
    output = f"s3://{BUCKET}/evaluation/{name}"
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE, AppSpecification={"ImageUri": EVALUATOR_IMAGE},
        Environment={"algorithm_image": XGBOOST_IMAGE, "bootstrap_samples": "20"},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 5}},
        ProcessingInputs=[
            {"InputName": "model", "S3Input": {"S3Uri": artifact, "LocalPath": "/opt/ml/processing/model",
                                               "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "test", "S3Input": {"S3Uri": test_prefix, "LocalPath": "/opt/ml/processing/test",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]})
    out.write(f"\nEvaluating the model on the test split (processing job {name}) ...\n")
    desc = wait_for([name], lambda n: sm.describe_processing_job(ProcessingJobName=n),
                    lambda d: d["ProcessingJobStatus"], out)[name]
    if desc["ProcessingJobStatus"] != "Completed":
        out.write(f"  {desc['ProcessingJobStatus']}: {desc.get('FailureReason', '')}\n")
        return None
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"evaluation/{name}/evaluation.json")["Body"].read())
    metrics = report["binary_classification_metrics"]
    matrix = metrics["confusion_matrix"]
    out.write(f"  accuracy {metrics['accuracy']['value']:.4f}, AUC {metrics['auc']['value']:.4f}, "
              f"F1 {metrics['f1']['value']:.4f}\n")
    out.write("  confusion matrix (rows: actual, columns: predicted)\n")
    out.write(f"  {'':>8}{'0':>6}{'1':>6}\n")
    for actual in ("0", "1"):
        out.write(f"  {actual:>8}{matrix[actual]['0']:>6}{matrix[actual]['1']:>6}\n")
    out.write(f"  report, confusion_matrix.png and roc.png in {output}/\n")
    return f"{output}/evaluation.json"


def register_and_approve(sm, group: str, artifact: str, evaluation_uri: str, out) -> str:
    """Register the model as a new version in a package group, then approve it: only then may it deploy."""
    sm.create_model_package_group(ModelPackageGroupName=group,
                                  ModelPackageGroupDescription="sagelab demo: breast-cancer classifiers")
    arn = sm.create_model_package(
        ModelPackageGroupName=group, ModelPackageDescription="XGBoost trained by the sagelab demo",
        InferenceSpecification={"Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": artifact}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}},
        ModelApprovalStatus="PendingManualApproval")["ModelPackageArn"]
    out.write(f"\nRegistered {arn} (PendingManualApproval)\n")
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                            ApprovalDescription="Test accuracy checked by the sagelab demo.")
    status = sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]
    out.write(f"  approved: ModelApprovalStatus is now {status}\n")
    return arn


def deploy_and_score(server: ServerProcess, name: str, package_arn: str, test: np.ndarray, out) -> int:
    """Deploy the approved package behind a real-time endpoint and score the held-out rows through it."""
    sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package_arn})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    out.write(f"\nDeploying the approved package as endpoint {name} ...\n")
    started = time.monotonic()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    out.write(f"  InService after {time.monotonic() - started:.1f}s\n")
    started = time.perf_counter()
    scores = []
    for row in test[:, 1:]:
        reply = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=csv_rows(row[None, :]))
        scores.append(float(reply["Body"].read()))
    elapsed = time.perf_counter() - started
    accuracy = float(np.mean((np.array(scores) > 0.5) == test[:, 0]))
    out.write(f"  {len(scores)} InvokeEndpoint calls (one row each) in {elapsed:.2f}s: "
              f"{1000 * elapsed / len(scores):.1f} ms per call, test accuracy {accuracy:.4f}\n")
    sm.delete_endpoint(EndpointName=name)
    return batch_score(server, name, test, out)


def batch_score(server: ServerProcess, model_name: str, test: np.ndarray, out) -> int:
    """Score the same held-out rows offline with a batch transform job (no endpoint involved)."""
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.put_object(Bucket=BUCKET, Key="batch/input/test.csv", Body=csv_rows(test[:, 1:]).encode())
    job = f"{model_name}-batch"
    out.write(f"\nBatch transform {job} over s3://{BUCKET}/batch/input/ ...\n")
    started = time.monotonic()
    sm.create_transform_job(
        TransformJobName=job, ModelName=model_name, BatchStrategy="MultiRecord",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": f"s3://{BUCKET}/batch/input/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch/output/", "AssembleWith": "Line",
                         "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=job, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    desc = sm.describe_transform_job(TransformJobName=job)
    if desc["TransformJobStatus"] != "Completed":
        out.write(f"  {desc['TransformJobStatus']}: {desc.get('FailureReason', '')}\n")
        return 1
    body = s3.get_object(Bucket=BUCKET, Key="batch/output/test.csv.out")["Body"].read().decode()
    scores = np.array([float(line) for line in body.split()])
    accuracy = float(np.mean((scores > 0.5) == test[:, 0]))
    out.write(f"  Completed in {time.monotonic() - started:.1f}s: {len(scores)} rows scored into "
              f"s3://{BUCKET}/batch/output/test.csv.out, test accuracy {accuracy:.4f}\n")
    return 0
