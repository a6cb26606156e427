"""The model registry through boto3: groups, versioned packages, approval, and approval gating deployment."""

from __future__ import annotations

import botocore.exceptions
import numpy as np
import pytest
from conftest import unique
from helpers import IMAGES, job_request, upload_breast_cancer, wait_job

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


@pytest.fixture(scope="module")
def artifact(sm, s3, tmp_path_factory):
    bucket = unique("registry")
    s3.create_bucket(Bucket=bucket)
    splits = upload_breast_cancer(s3, bucket, tmp_path_factory.mktemp("bc"))
    job = unique("xgb")
    sm.create_training_job(**job_request(job, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "20", "max_depth": "3"}))
    desc = wait_job(sm, job)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    return {"bucket": bucket, "url": desc["ModelArtifacts"]["S3ModelArtifacts"], "test": splits["test"]}


def package_request(group: str, artifact: dict, **extra) -> dict:
    return {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": "XGBoost on breast cancer",
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGES["xgboost"], "ModelDataUrl": artifact["url"]}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.large"]},
        "ModelMetrics": {"ModelQuality": {"Statistics": {
            "ContentType": "application/json",
            "S3Uri": f"s3://{artifact['bucket']}/evaluation/evaluation.json"}}},
        **extra,
    }


def error_of(call, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]


def test_versions_increment_and_list_filters(sm, artifact):
    group = unique("group")
    group_arn = sm.create_model_package_group(ModelPackageGroupName=group,
                                              ModelPackageGroupDescription="churn models")["ModelPackageGroupArn"]
    assert group_arn.endswith(f":model-package-group/{group}")
    described = sm.describe_model_package_group(ModelPackageGroupName=group_arn)
    assert described["ModelPackageGroupStatus"] == "Completed"
    assert described["ModelPackageGroupDescription"] == "churn models"
    assert error_of(sm.create_model_package_group, ModelPackageGroupName=group)["Code"] == "ValidationException"

    arns = [sm.create_model_package(**package_request(group, artifact))["ModelPackageArn"] for _ in range(3)]
    assert [arn.rsplit(":", 1)[1] for arn in arns] == [f"model-package/{group}/{v}" for v in (1, 2, 3)]
    first = sm.describe_model_package(ModelPackageName=arns[0])
    assert first["ModelPackageVersion"] == 1 and first["ModelPackageGroupName"] == group
    assert first["ModelApprovalStatus"] == "PendingManualApproval"
    assert first["ModelPackageStatus"] == "Completed"
    assert first["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("evaluation.json")
    assert sm.describe_model_package(ModelPackageName=f"{group}/2")["ModelPackageArn"] == arns[1]

    sm.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved",
                            ApprovalDescription="AUC above the bar")
    sm.update_model_package(ModelPackageArn=arns[2], ModelApprovalStatus="Rejected")
    approved = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved")
    assert [p["ModelPackageArn"] for p in approved["ModelPackageSummaryList"]] == [arns[1]]
    newest_first = sm.list_model_packages(ModelPackageGroupName=group, SortOrder="Descending")
    assert [p["ModelPackageVersion"] for p in newest_first["ModelPackageSummaryList"]] == [3, 2, 1]
    pages = list(sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 2 and sum(len(p["ModelPackageSummaryList"]) for p in pages) == 3
    assert group in [g["ModelPackageGroupName"] for g in
                     sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]]

    # A group that still holds versions cannot go; once they are gone it can.
    conflict = error_of(sm.delete_model_package_group, ModelPackageGroupName=group)
    assert conflict["Code"] == "ConflictException" and "DeleteModelPackage" in conflict["Message"]
    for arn in arns:
        sm.delete_model_package(ModelPackageName=arn)
    sm.delete_model_package_group(ModelPackageGroupName=group)
    assert error_of(sm.describe_model_package_group, ModelPackageGroupName=group)["Code"] == "ValidationException"
    # Versions are never reused, even after deletions.
    sm.create_model_package_group(ModelPackageGroupName=group)
    again = sm.create_model_package(**package_request(group, artifact))["ModelPackageArn"]
    assert again.endswith(f"/{group}/1")


def test_bad_packages_are_refused(sm, artifact):
    group = unique("strict")
    sm.create_model_package_group(ModelPackageGroupName=group)
    error = error_of(sm.create_model_package, **package_request(unique("missing-group"), artifact))
    assert error["Code"] == "ValidationException" and "does not exist" in error["Message"]
    request = package_request(group, artifact)
    request["InferenceSpecification"]["Containers"][0]["Image"] = "123.dkr.ecr.us-east-1.amazonaws.com/mine:1"
    assert "sagemaker-xgboost" in error_of(sm.create_model_package, **request)["Message"]
    request = package_request(group, artifact)
    request["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = f"s3://{artifact['bucket']}/nope.tar.gz"
    assert "could not find model data" in error_of(sm.create_model_package, **request)["Message"]
    request = package_request(group, artifact)
    del request["InferenceSpecification"]
    assert "InferenceSpecification" in error_of(sm.create_model_package, **request)["Message"]
    assert error_of(sm.describe_model_package, ModelPackageName=f"{group}/9")["Code"] == "ValidationException"


@pytest.mark.slow
def test_approval_gates_deployment(sm, server, artifact):
    group = unique("deploy")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(**package_request(group, artifact))["ModelPackageArn"]
    model = unique("from-package")
    refused = error_of(sm.create_model, ModelName=model, ExecutionRoleArn=ROLE,
                       PrimaryContainer={"ModelPackageName": arn})
    assert refused["Code"] == "ValidationException"
    assert "PendingManualApproval" in refused["Message"] and "only Approved" in refused["Message"]

    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="ship it")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved" and described["ApprovalDescription"] == "ship it"
    assert described["LastModifiedTime"] >= described["CreationTime"]
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": arn})
    container = sm.describe_model(ModelName=model)["PrimaryContainer"]
    assert container["ModelPackageName"] == arn and container["ModelDataUrl"] == artifact["url"]

    config = unique("config")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    endpoint = unique("endpoint")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
        test = artifact["test"]
        body = "\n".join(",".join(f"{v:.10g}" for v in row[1:]) for row in test)
        reply = server.client("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                                   Body=body)
        scores = np.array([float(v) for v in reply["Body"].read().decode().split()])
        assert len(scores) == len(test)
        assert ((scores > 0.5) == (test[:, 0] == 1)).mean() >= 0.9
    finally:
        sm.delete_endpoint(EndpointName=endpoint)

    # Rejecting the package later stops new models from using it.
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    refused = error_of(sm.create_model, ModelName=unique("late"), ExecutionRoleArn=ROLE,
                       PrimaryContainer={"ModelPackageName": arn})
    assert "Rejected" in refused["Message"]


def test_unversioned_packages_and_idempotent_creation(sm, artifact):
    name = unique("standalone")
    request = package_request(name, artifact)
    request["ModelPackageName"] = request.pop("ModelPackageGroupName")
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    assert arn.endswith(f":model-package/{name}")
    described = sm.describe_model_package(ModelPackageName=name)
    assert "ModelApprovalStatus" not in described and "ModelPackageVersion" not in described
    listed = [p["ModelPackageName"] for p in sm.list_model_packages(NameContains=name)["ModelPackageSummaryList"]]
    assert listed == [name]  # AWS lists unversioned packages unless told otherwise
    assert "unversioned" in error_of(sm.update_model_package, ModelPackageArn=arn,
                                     ModelApprovalStatus="Approved")["Message"]

    group = unique("tokens")
    sm.create_model_package_group(ModelPackageGroupName=group)
    first = sm.create_model_package(**package_request(group, artifact, ClientToken="retry-1"))["ModelPackageArn"]
    assert sm.create_model_package(**package_request(group, artifact, ClientToken="retry-1"))["ModelPackageArn"] \
        == first
    assert sm.list_model_packages(ModelPackageGroupName=group, ModelPackageType="Both")[
        "ModelPackageSummaryList"][0]["ModelPackageVersion"] == 1
    assert len(sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) == 1
