"""`sagelab demo`: the whole pipeline on the embedded default, driven only through boto3.

Starts a server on a free port, uploads scikit-learn's breast-cancer data through the S3 API, trains
XGBoost and Linear Learner through the SageMaker API, prints their validation metrics, then deploys the
XGBoost model, scores the test split through the endpoint and again with a batch transform job.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sagelab.embedded import ServerProcess

BUCKET = "sagelab-demo"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LINEAR_LEARNER_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


def split_dataset(seed: int = 7) -> dict[str, np.ndarray]:
    """Breast-cancer data as SageMaker expects it: label first, stratified 80/10/10."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    features, labels = load_breast_cancer(return_X_y=True)
    data = np.column_stack([labels, features])
    train, rest = train_test_split(data, test_size=0.2, stratify=labels, random_state=seed)
    validation, test = train_test_split(rest, test_size=0.5, stratify=rest[:, 0], random_state=seed)
    return {"train": train, "validation": validation, "test": test}


def write_csv(path: Path, rows: np.ndarray) -> None:
    np.savetxt(path, rows, delimiter=",", fmt="%.10g")


def _channel(name: str, uri: str) -> dict:
    return {"ChannelName": name, "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}


def training_request(name: str, image: str, hyperparameters: dict[str, str]) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [_channel("train", f"s3://{BUCKET}/data/train/"),
                            _channel("validation", f"s3://{BUCKET}/data/validation/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def wait_for_jobs(sm, names: list[str], out=sys.stdout) -> dict[str, dict]:
    started = time.monotonic()
    final: dict[str, dict] = {}
    while len(final) < len(names):
        parts = []
        for name in names:
            if name in final:
                desc = final[name]
            else:
                desc = sm.describe_training_job(TrainingJobName=name)
                if desc["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                    final[name] = desc
            parts.append(f"{name}: {desc['TrainingJobStatus']}/{desc['SecondaryStatus']}")
        out.write(f"\r  [{time.monotonic() - started:5.1f}s] " + "   ".join(parts) + "   ")
        out.flush()
        if len(final) < len(names):
            time.sleep(0.5)
    out.write("\n")
    return final


def run_demo(home: str | None = None, out=sys.stdout) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sagelab-demo-"))
    server_home = Path(home) if home else workdir / "home"
    out.write(f"Starting a sagelab server (home {server_home}) ...\n")
    with ServerProcess(server_home) as server:
        out.write(f"  listening on {server.url}; credentials in {server_home / 'credentials'}\n")
        s3, sm = server.client("s3"), server.client("sagemaker")

        out.write("Uploading scikit-learn's breast-cancer data set (569 rows, 30 features) through S3 ...\n")
        if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=BUCKET)
        splits = split_dataset()
        for split, rows in splits.items():
            path = workdir / f"{split}.csv"
            write_csv(path, rows)
            s3.upload_file(str(path), BUCKET, f"data/{split}/{split}.csv")
            out.write(f"  s3://{BUCKET}/data/{split}/{split}.csv  {len(rows)} rows\n")

        stamp = time.strftime("%Y%m%d-%H%M%S")
        jobs = {
            f"demo-xgboost-{stamp}": training_request(f"demo-xgboost-{stamp}", XGBOOST_IMAGE, {
                "objective": "binary:logistic", "num_round": "100", "max_depth": "4", "eta": "0.2",
                "eval_metric": "auc,error,logloss"}),
            f"demo-linear-learner-{stamp}": training_request(f"demo-linear-learner-{stamp}", LINEAR_LEARNER_IMAGE, {
                "predictor_type": "binary_classifier", "epochs": "15", "mini_batch_size": "100"}),
        }
        out.write("Training XGBoost and Linear Learner through the SageMaker API ...\n")
        for request in jobs.values():
            sm.create_training_job(**request)
        results = wait_for_jobs(sm, list(jobs), out)
        status = _report(results, out)
        if status:
            return status
        xgboost_job = results[next(iter(jobs))]
        return deploy_and_score(server, xgboost_job, splits["test"], out)


def deploy_and_score(server: ServerProcess, job: dict, test: np.ndarray, out) -> int:
    """Deploy the XGBoost model behind a real-time endpoint and score the held-out rows through it."""
    sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    name = job["TrainingJobName"].replace("demo-xgboost", "demo-xgb")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST_IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    out.write(f"\nDeploying {name} to a real-time endpoint ...\n")
    started = time.monotonic()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    out.write(f"  InService after {time.monotonic() - started:.1f}s\n")
    started = time.perf_counter()
    scores = []
    for row in test[:, 1:]:
        body = ",".join(f"{v:.10g}" for v in row)
        reply = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)
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
    features = "\n".join(",".join(f"{v:.10g}" for v in row) for row in test[:, 1:]) + "\n"
    s3.put_object(Bucket=BUCKET, Key="batch/input/test.csv", Body=features.encode())
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


def _report(results: dict[str, dict], out) -> int:
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
