"""Inference pipelines with real boto3: a model of 2 to 15 containers run in order, here the canonical one,
the fitted recipe (sagelab-recipe) turning raw rows into features, then XGBoost, on an endpoint and in a
batch transform, answering exactly what the two steps give when run by hand; and the same containers in
Direct mode, each invoked alone by its ContainerHostname."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest
from conftest import unique
from xgb_artifact import booster_tar

from sagelab.recipes.recipe import parse_recipe
from sagelab.recipes.runner import prepare
from sagelab.recipes.transformer import RecipeTransformer

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
RECIPE_IMAGE = "sagelab-recipe:latest"
ROLE = "arn:aws:iam::000000000000:role/r"
RECIPE = {"target": "churned", "steps": [
    {"step": "impute", "columns": ["age"], "strategy": "median", "indicator": True},
    {"step": "one_hot", "columns": ["plan"]},
    {"step": "scale", "columns": ["age", "income"], "method": "standard"},
    {"step": "split", "seed": 1},
]}


def customers(n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"age": rng.normal(40, 10, n).round(1), "income": rng.lognormal(10, 0.5, n).round(2),
                          "plan": rng.choice(["basic", "pro", "team"], n)})
    frame["churned"] = ((frame["plan"] == "basic") & (frame["age"] < 40)).astype(int)
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    return frame


@pytest.fixture(scope="module")
def pipeline(sm, s3, tmp_path_factory):
    import xgboost as xgb

    folder = tmp_path_factory.mktemp("pipeline")
    frame = customers()
    frame.to_csv(folder / "customers.csv", index=False)
    prepare(parse_recipe(RECIPE), folder / "customers.csv", folder / "out")
    train = np.loadtxt(folder / "out" / "train" / "train.csv", delimiter=",", ndmin=2)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(train[:, 1:], label=train[:, 0]), 8)

    bucket = unique("pipeline")
    s3.create_bucket(Bucket=bucket)
    # The recipe container reads the transformer/ folder as a prefix; XGBoost reads a model.tar.gz.
    s3.upload_file(str(folder / "out" / "transformer" / "transformer.json"), bucket, "recipe/transformer/transformer.json")
    s3.put_object(Bucket=bucket, Key="xgb/model.tar.gz", Body=booster_tar(booster))
    containers = [{"Image": RECIPE_IMAGE, "ModelDataUrl": f"s3://{bucket}/recipe/transformer/",
                   "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}},
                  {"Image": XGB, "ModelDataUrl": f"s3://{bucket}/xgb/model.tar.gz",
                   "Environment": {"SAGEMAKER_PROGRAM_NOTE": "xgboost's own"}}]
    model = unique("pipeline-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, Containers=containers,
                    InferenceExecutionConfig={"Mode": "Serial"})

    rows = frame.drop(columns=["churned"]).iloc[:20]
    body = rows.to_csv(header=False, index=False, na_rep="").encode()
    # The two steps by hand: the recipe's transformer, then the booster.
    transformer = RecipeTransformer.load(folder / "out" / "transformer" / "transformer.json")
    features_csv = transformer.transform_csv(body)
    by_hand = booster.predict(xgb.DMatrix(np.loadtxt(io.BytesIO(features_csv), delimiter=",", ndmin=2)))
    return {"bucket": bucket, "model": model, "containers": containers, "body": body, "by_hand": by_hand,
            "features": features_csv}


def scores(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()])


@pytest.mark.slow
def test_pipeline_endpoint_chains_recipe_then_xgboost(sm, server, pipeline):
    rt = server.client("sagemaker-runtime")
    described = sm.describe_model(ModelName=pipeline["model"])
    assert [c["Image"] for c in described["Containers"]] == [RECIPE_IMAGE, XGB]
    assert described["Containers"][1]["Environment"] == {"SAGEMAKER_PROGRAM_NOTE": "xgboost's own"}
    assert described["InferenceExecutionConfig"] == {"Mode": "Serial"}
    config, endpoint = unique("pipeline-config"), unique("pipeline-endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": pipeline["model"], "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    images = [i["SpecifiedImage"] for i in sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0][
        "DeployedImages"]]
    assert images == [RECIPE_IMAGE, XGB]

    response = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=pipeline["body"])
    assert response["InvokedProductionVariant"] == "AllTraffic" and response["ContentType"] == "text/csv"
    np.testing.assert_allclose(scores(response["Body"].read().decode()), pipeline["by_hand"], rtol=1e-5)
    # The client's Accept goes to the last container.
    as_json = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
                                 Body=pipeline["body"])
    assert as_json["ContentType"] == "application/json"
    # Raw rows the recipe cannot read are the first container's 400.
    with pytest.raises(rt.exceptions.ModelError) as info:
        rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,2\n")
    assert info.value.response["OriginalStatusCode"] == 400
    assert "recipe" in info.value.response["OriginalMessage"]
    with pytest.raises(rt.exceptions.ValidationError) as not_direct:
        rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=pipeline["body"],
                           TargetContainerHostname="container-1")
    assert "Direct" in not_direct.value.response["Error"]["Message"]
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_direct_mode_runs_only_the_named_container(sm, server, pipeline):
    rt = server.client("sagemaker-runtime")
    model = unique("direct-model")
    features_host, scores_host = pipeline["containers"]
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, InferenceExecutionConfig={"Mode": "Direct"},
                    Containers=[{**features_host, "ContainerHostname": "features"},
                                {**scores_host, "ContainerHostname": "scores"}])
    config, endpoint = unique("direct-config"), unique("direct-endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})

    features = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=pipeline["body"],
                                  TargetContainerHostname="features")["Body"].read()
    assert features == pipeline["features"]
    answer = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=features,
                                TargetContainerHostname="scores")["Body"].read().decode()
    np.testing.assert_allclose(scores(answer), pipeline["by_hand"], rtol=1e-5)
    for kwargs, expected in (({}, "TargetContainerHostname is required"), ({"TargetContainerHostname": "nope"},
                                                                            "'nope'")):
        with pytest.raises(rt.exceptions.ValidationError) as info:
            rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=pipeline["body"], **kwargs)
        assert expected in info.value.response["Error"]["Message"]
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_pipeline_batch_transform_matches_the_steps_by_hand(sm, s3, pipeline):
    bucket = pipeline["bucket"]
    s3.put_object(Bucket=bucket, Key="batch/in/rows.csv", Body=pipeline["body"])
    name = unique("pipeline-tf")
    sm.create_transform_job(
        TransformJobName=name, ModelName=pipeline["model"],
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": f"s3://{bucket}/batch/in/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/batch/out/", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    deadline = time.monotonic() + 90
    while (desc := sm.describe_transform_job(TransformJobName=name))["TransformJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    out = s3.get_object(Bucket=bucket, Key="batch/out/rows.csv.out")["Body"].read().decode()
    np.testing.assert_allclose(scores(out), pipeline["by_hand"], rtol=1e-5)


def test_a_pipeline_has_two_to_fifteen_containers(sm, pipeline):
    container = pipeline["containers"][1]
    for count in (1, 16):
        with pytest.raises(sm.exceptions.ClientError) as info:
            sm.create_model(ModelName=unique("bad"), ExecutionRoleArn=ROLE, Containers=[container] * count)
        error = info.value.response["Error"]
        # 16 is refused at the boundary in AWS's own words ("... at 'containers' failed to satisfy constraint").
        assert error["Code"] == "ValidationException" and "containers" in error["Message"].lower(), error
        assert str(count) in error["Message"] or "15" in error["Message"]
    with pytest.raises(sm.exceptions.ClientError) as some_named:
        sm.create_model(ModelName=unique("bad"), ExecutionRoleArn=ROLE, Containers=[
            {**pipeline["containers"][0], "ContainerHostname": "features"}, container],
            InferenceExecutionConfig={"Mode": "Direct"})
    assert "ContainerHostname" in some_named.value.response["Error"]["Message"]
    with pytest.raises(sm.exceptions.ClientError) as multi:
        sm.create_model(ModelName=unique("bad"), ExecutionRoleArn=ROLE, Containers=[
            pipeline["containers"][0], {**container, "Mode": "MultiModel",
                                        "ModelDataUrl": f"s3://{pipeline['bucket']}/xgb/"}])
    assert "Containers[2].Mode" in multi.value.response["Error"]["Message"]
