"""Script-mode serving through the real SageMaker SDK: endpoints and batch transform answered by the user's
model_fn / input_fn / predict_fn / output_fn, with the inference toolkit's defaults for the rest."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap

import numpy as np
import pytest
from conftest import unique
from script_helpers import ROLE, deploy, iris_csv, write_source
from test_script_training import TRAIN


def _model_tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.slow
def test_sklearn_fit_deploy_predict_and_batch_transform(sdk_env, s3, tmp_path):
    from sagemaker.inputs import TrainingInput
    from sagemaker.sklearn import SKLearn

    bucket = unique("script-serve")
    s3.create_bucket(Bucket=bucket)
    train, validation = iris_csv(tmp_path / "data")
    s3.upload_file(str(train), bucket, "iris/train/train.csv")
    s3.upload_file(str(validation), bucket, "iris/validation/validation.csv")
    features = np.loadtxt(validation, delimiter=",")[:, 1:]
    np.savetxt(tmp_path / "batch.csv", features, delimiter=",", fmt="%.6g")
    s3.upload_file(str(tmp_path / "batch.csv"), bucket, "iris/batch/batch.csv")

    source = write_source(tmp_path / "src", {"train.py": TRAIN, "helper.py": "VALUE = 1\n"})
    estimator = SKLearn(entry_point="train.py", source_dir=str(source), framework_version="1.2-1",
                        instance_type="ml.m5.large", role=ROLE, hyperparameters={"n-estimators": 20},
                        output_path=f"s3://{bucket}/output")
    estimator.fit({"train": TrainingInput(f"s3://{bucket}/iris/train/"),
                   "validation": TrainingInput(f"s3://{bucket}/iris/validation/")}, logs="None")

    # The training script's model_fn and the scikit-learn defaults: NPY in (SKLearnPredictor), NPY out.
    predictor, desc = deploy(estimator, sdk_env.client("sagemaker"))
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")
    try:
        labels = predictor.predict(features)
        assert labels.shape == (len(features),) and set(np.unique(labels)) <= {0.0, 1.0, 2.0}
        runtime = sdk_env.client("sagemaker-runtime")
        answer = runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType="text/csv",
                                         Accept="application/json",
                                         Body="\n".join(",".join(map(str, row)) for row in features[:3]))
        assert answer["ContentType"] == "application/json"
        assert json.loads(answer["Body"].read()) == labels[:3].tolist()
        with pytest.raises(runtime.exceptions.ModelError) as caught:
            runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType="text/plain", Body=b"x")
        assert "415" in str(caught.value) or "text/plain" in str(caught.value)
    finally:
        predictor.delete_endpoint()

    transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large",
                                        output_path=f"s3://{bucket}/batch-out", accept="text/csv",
                                        strategy="MultiRecord", assemble_with="Line")
    transformer.transform(f"s3://{bucket}/iris/batch/", content_type="text/csv", split_type="Line", logs=False)
    transformer.wait(logs=False)
    out = s3.get_object(Bucket=bucket, Key="batch-out/batch.csv.out")["Body"].read().decode()
    assert [float(v) for v in out.split()] == labels.tolist()


INFERENCE = """
import json, os
import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError("only JSON, got " + content_type)
    return json.loads(body)["instances"]


def predict_fn(data, model):
    return {"labels": model.predict(data).tolist(), "probabilities": model.predict_proba(data).tolist()}


def output_fn(prediction, accept):
    return json.dumps({**prediction, "accept": accept, "region": os.environ.get("SAGEMAKER_REGION")}), \\
        "application/json"
"""

BROKEN = """
def model_fn(model_dir):
    raise RuntimeError("the model file is corrupt")
"""


@pytest.mark.slow
def test_sklearn_model_with_its_own_inference_functions_and_a_failing_model_fn(sdk_env, s3, tmp_path):
    import joblib
    from sagemaker.sklearn import SKLearnModel
    from sklearn.linear_model import LogisticRegression

    bucket = unique("script-model")
    s3.create_bucket(Bucket=bucket)
    train, _ = iris_csv(tmp_path)
    data = np.loadtxt(train, delimiter=",")
    joblib.dump(LogisticRegression(max_iter=500).fit(data[:, 1:], data[:, 0]), tmp_path / "model.joblib")
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz",
                  Body=_model_tarball({"model.joblib": (tmp_path / "model.joblib").read_bytes()}))
    code = write_source(tmp_path / "code", {"inference.py": INFERENCE})

    model = SKLearnModel(model_data=f"s3://{bucket}/model/model.tar.gz", role=ROLE, entry_point="inference.py",
                         source_dir=str(code), framework_version="1.2-1")
    predictor, desc = deploy(model, sdk_env.client("sagemaker"))
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")
    try:
        runtime = sdk_env.client("sagemaker-runtime")
        answer = runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType="application/json",
                                         Body=json.dumps({"instances": data[:4, 1:].tolist()}))
        result = json.loads(answer["Body"].read())
        assert result["labels"] == data[:4, 0].tolist()
        assert len(result["probabilities"]) == 4 and result["accept"] == "application/json"
        assert result["region"] == model.sagemaker_session.boto_region_name
        with pytest.raises(runtime.exceptions.ModelError) as caught:
            runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType="text/csv", Body=b"1,2,3,4")
        assert "only JSON, got text/csv" in str(caught.value)
    finally:
        predictor.delete_endpoint()

    broken = SKLearnModel(model_data=f"s3://{bucket}/model/model.tar.gz", role=ROLE, entry_point="inference.py",
                          source_dir=str(write_source(tmp_path / "broken", {"inference.py": BROKEN})),
                          framework_version="1.2-1")
    _, desc = deploy(broken, sdk_env.client("sagemaker"), endpoint_name=unique("broken"))
    assert desc["EndpointStatus"] == "Failed"
    assert "model_fn raised RuntimeError: the model file is corrupt" in desc["FailureReason"]


TORCH_INFERENCE = textwrap.dedent("""
    import os
    import torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.softmax(self.linear(x), dim=1)


    def model_fn(model_dir):
        net = Net()
        net.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), weights_only=True))
        return net
""")


@pytest.mark.slow
def test_pytorch_model_repacked_with_its_code_uses_the_torch_defaults(sdk_env, s3, tmp_path):
    torch = pytest.importorskip("torch")  # the 'torch' extra
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.pytorch import PyTorchModel
    from sagemaker.serializers import JSONSerializer

    bucket = unique("script-torch")
    s3.create_bucket(Bucket=bucket)
    namespace: dict = {}
    exec(TORCH_INFERENCE, namespace)  # noqa: S102 - the test's own model class
    net = namespace["Net"]()
    torch.save(net.state_dict(), tmp_path / "model.pth")
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz",
                  Body=_model_tarball({"model.pth": (tmp_path / "model.pth").read_bytes()}))
    code = write_source(tmp_path / "code", {"inference.py": TORCH_INFERENCE})
    model = PyTorchModel(model_data=f"s3://{bucket}/model/model.tar.gz", role=ROLE, entry_point="inference.py",
                         source_dir=str(code), framework_version="2.1", py_version="py310")
    predictor, desc = deploy(model, sdk_env.client("sagemaker"), serializer=JSONSerializer(),
                             deserializer=JSONDeserializer())
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")
    try:
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
        expected = net(torch.tensor(rows)).detach().numpy()
        assert np.allclose(predictor.predict(rows), expected, atol=1e-6)
    finally:
        predictor.delete_endpoint()
    # The SDK repacked the code into the model artifact and pointed the container at /opt/ml/model/code.
    container = sdk_env.client("sagemaker").describe_model(ModelName=model.name)["PrimaryContainer"]
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
