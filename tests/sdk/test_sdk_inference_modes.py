"""The SageMaker SDK's ServerlessInferenceConfig and AsyncPredictor, unchanged, against a real server."""

from __future__ import annotations

import pytest
import sagemaker  # a test extra: a missing SDK must fail, not skip
from conftest import unique
from xgb_artifact import XGB_IMAGE, csv_body, model_tar

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


@pytest.fixture
def sdk_model(sdk_env, s3):
    session = sagemaker.Session()
    bucket = session.default_bucket()
    key = f"{unique('sdk-modes')}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=model_tar())
    return session, bucket, sagemaker.model.Model(image_uri=XGB_IMAGE, model_data=f"s3://{bucket}/{key}", role=ROLE,
                                                  sagemaker_session=session)


def _in_service(session, name: str) -> None:
    session.sagemaker_client.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})


@pytest.mark.slow
def test_serverless_inference_config_deploys_and_predicts(sdk_model):
    from sagemaker.serializers import CSVSerializer
    from sagemaker.serverless import ServerlessInferenceConfig

    session, _, model = sdk_model
    name = unique("sdk-serverless")
    model.deploy(serverless_inference_config=ServerlessInferenceConfig(memory_size_in_mb=2048, max_concurrency=2),
                 endpoint_name=name, wait=False)
    _in_service(session, name)
    predictor = sagemaker.predictor.Predictor(name, sagemaker_session=session, serializer=CSVSerializer())
    scores = predictor.predict(csv_body(2)).decode().split()
    assert len(scores) == 2
    variant = session.sagemaker_client.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    predictor.delete_endpoint()


@pytest.mark.slow
def test_async_predictor_round_trip(sdk_model, s3):
    from sagemaker.async_inference import AsyncInferenceConfig
    from sagemaker.serializers import CSVSerializer

    session, bucket, model = sdk_model
    name = unique("sdk-async")
    model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name=name, wait=False,
                 async_inference_config=AsyncInferenceConfig(output_path=f"s3://{bucket}/{name}/out",
                                                             failure_path=f"s3://{bucket}/{name}/fail"))
    _in_service(session, name)
    predictor = sagemaker.predictor_async.AsyncPredictor(
        sagemaker.predictor.Predictor(name, sagemaker_session=session, serializer=CSVSerializer()))
    response = predictor.predict_async(data=csv_body(3))
    assert response.output_path.startswith(f"s3://{bucket}/{name}/out/")
    # Waited for here rather than by get_result(WaiterConfig): the SDK's failure-path waiter thread outlives
    # the call and would still poll after the server has gone.
    out_bucket, _, out_key = response.output_path[5:].partition("/")
    s3.get_waiter("object_exists").wait(Bucket=out_bucket, Key=out_key, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    assert len(response.get_result().decode().split()) == 3
    predictor.delete_endpoint()
