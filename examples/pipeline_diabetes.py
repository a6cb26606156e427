"""A SageMaker Pipeline in the shape of the SDK's abalone notebook: process -> train -> evaluate -> condition
on a metric -> register the model (and batch-score with it), else fail.

Data: scikit-learn's bundled diabetes regression set (no download). The preprocessing and evaluation
steps are user scripts run by `SKLearnProcessor`; training is the built-in XGBoost. The evaluation step
writes `evaluation.json`, a `PropertyFile` the condition reads with `JsonGet`. Nothing here is specific
to sagelab: it runs as is against AWS (with a real role ARN) or a sagelab server (`eval "$(sagelab env)"`
first). The last line printed is `RESULT {...}`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import textwrap

import numpy as np
import sagemaker
from botocore.exceptions import WaiterError
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn.processing import SKLearnProcessor
from sagemaker.transformer import Transformer
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionLessThanOrEqualTo
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TransformStep
from sklearn.datasets import load_diabetes

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/pipeline-diabetes"
PIPELINE_NAME = os.environ.get("PIPELINE_NAME", "diabetes-pipeline")

PREPROCESS = """
import os
import numpy as np
import pandas as pd

base = "/opt/ml/processing"
frame = pd.read_csv(f"{base}/input/diabetes.csv")
label = frame.pop("target")
features = (frame - frame.mean()) / frame.std()
data = pd.concat([label, features], axis=1).sample(frac=1.0, random_state=7).to_numpy()
train, validation, test = np.split(data, [int(0.7 * len(data)), int(0.85 * len(data))])
for name, rows in {"train": train, "validation": validation, "test": test}.items():
    os.makedirs(f"{base}/{name}", exist_ok=True)
    pd.DataFrame(rows).to_csv(f"{base}/{name}/{name}.csv", header=False, index=False)
# What the batch transform scores: the test rows without their label.
os.makedirs(f"{base}/test-features", exist_ok=True)
pd.DataFrame(test[:, 1:]).to_csv(f"{base}/test-features/features.csv", header=False, index=False)
print("split", len(train), len(validation), len(test))
"""

EVALUATE = """
import json, os, tarfile
import numpy as np
import pandas as pd
import xgboost

with tarfile.open("/opt/ml/processing/model/model.tar.gz") as archive:
    archive.extractall(".", filter="data")
booster = xgboost.Booster()
booster.load_model("xgboost-model")
test = pd.read_csv("/opt/ml/processing/test/test.csv", header=None).to_numpy()
predictions = booster.predict(xgboost.DMatrix(test[:, 1:]))
mse = float(np.mean((test[:, 0] - predictions) ** 2))
report = {"regression_metrics": {"mse": {"value": mse, "standard_deviation": float(np.std(test[:, 0] - predictions))}}}
os.makedirs("/opt/ml/processing/evaluation", exist_ok=True)
with open("/opt/ml/processing/evaluation/evaluation.json", "w") as f:
    json.dump(report, f)
print("mse", mse)
"""


def write_script(folder: str, name: str, code: str) -> str:
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(code))
    return path


def build_pipeline(session: PipelineSession, input_uri: str, code_dir: str, bucket: str) -> Pipeline:
    processing_instance_count = ParameterInteger(name="ProcessingInstanceCount", default_value=1)
    input_data = ParameterString(name="InputData", default_value=input_uri)
    approval = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=6000.0)

    sklearn = SKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type="ml.m5.xlarge",
                               instance_count=processing_instance_count, sagemaker_session=session)
    step_process = ProcessingStep(
        name="Preprocess",
        step_args=sklearn.run(
            inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input")],
            outputs=[ProcessingOutput(output_name=name, source=f"/opt/ml/processing/{name}")
                     for name in ("train", "validation", "test", "test-features")],
            code=write_script(code_dir, "preprocess.py", PREPROCESS)))

    image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, version="1.7-1")
    xgb = Estimator(image, ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                    output_path=f"s3://{bucket}/{PREFIX}/model", sagemaker_session=session)
    xgb.set_hyperparameters(objective="reg:squarederror", num_round=80, max_depth=3, eta=0.1, subsample=0.8)
    outputs = step_process.properties.ProcessingOutputConfig.Outputs
    step_train = TrainingStep(name="Train", step_args=xgb.fit({
        "train": TrainingInput(outputs["train"].S3Output.S3Uri, content_type="text/csv"),
        "validation": TrainingInput(outputs["validation"].S3Output.S3Uri, content_type="text/csv")}))

    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    step_eval = ProcessingStep(
        name="Evaluate",
        step_args=sklearn.run(
            inputs=[ProcessingInput(source=step_train.properties.ModelArtifacts.S3ModelArtifacts,
                                    destination="/opt/ml/processing/model"),
                    ProcessingInput(source=outputs["test"].S3Output.S3Uri, destination="/opt/ml/processing/test")],
            outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")],
            code=write_script(code_dir, "evaluate.py", EVALUATE)),
        property_files=[evaluation_report])

    model = Model(image_uri=image, model_data=step_train.properties.ModelArtifacts.S3ModelArtifacts,
                  role=ROLE, sagemaker_session=session)
    step_register = ModelStep(name="Register", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name=f"{PIPELINE_NAME}-models",
        approval_status=approval))
    step_create_model = ModelStep(name="CreateModel", step_args=model.create(instance_type="ml.m5.large"))
    transformer = Transformer(model_name=step_create_model.properties.ModelName, instance_type="ml.m5.large",
                              instance_count=1, accept="text/csv", assemble_with="Line",
                              output_path=Join(on="/", values=[f"s3://{bucket}", PREFIX, "scores"]),
                              sagemaker_session=session)
    step_transform = TransformStep(name="Score", step_args=transformer.transform(
        data=outputs["test-features"].S3Output.S3Uri, content_type="text/csv", split_type="Line"))

    step_fail = FailStep(name="MseTooHigh", error_message=Join(
        on=" ", values=["Execution failed: the model's MSE is above", mse_threshold]))
    step_condition = ConditionStep(
        name="CheckMse",
        conditions=[ConditionLessThanOrEqualTo(
            left=JsonGet(step_name=step_eval.name, property_file=evaluation_report,
                         json_path="regression_metrics.mse.value"),
            right=mse_threshold)],
        if_steps=[step_register, step_create_model, step_transform], else_steps=[step_fail])

    return Pipeline(name=PIPELINE_NAME,
                    parameters=[processing_instance_count, input_data, approval, mse_threshold],
                    steps=[step_process, step_train, step_eval, step_condition], sagemaker_session=session)


def main() -> dict:
    session = PipelineSession()
    bucket = session.default_bucket()
    data = load_diabetes(as_frame=True).frame
    with tempfile.TemporaryDirectory() as tmp:
        data.to_csv(f"{tmp}/diabetes.csv", index=False)
        input_uri = session.upload_data(f"{tmp}/diabetes.csv", bucket, f"{PREFIX}/raw")
        pipeline = build_pipeline(session, input_uri, tmp, bucket)
        pipeline.upsert(role_arn=ROLE)

    execution = pipeline.start()
    execution.wait(delay=2, max_attempts=300)
    steps = execution.list_steps()
    for step in reversed(steps):
        print(f"{step['StepName']:12} {step['StepStatus']}")
    by_name = {s["StepName"]: s for s in steps}
    package_arn = by_name["Register-RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
    package = session.sagemaker_client.describe_model_package(ModelPackageName=package_arn)
    transform_job = by_name["Score"]["Metadata"]["TransformJob"]["Arn"].rsplit("/", 1)[-1]
    output_path = session.sagemaker_client.describe_transform_job(
        TransformJobName=transform_job)["TransformOutput"]["S3OutputPath"]
    outputs = [uri for uri in sagemaker.s3.S3Downloader.list(output_path, sagemaker_session=session)
               if uri.endswith("features.csv.out")]
    scores = sagemaker.s3.S3Downloader.read_file(outputs[0], sagemaker_session=session)

    # A second execution with a threshold no model can meet takes the else branch and fails there.
    strict = pipeline.start(parameters={"MseThreshold": 1.0})
    with contextlib.suppress(WaiterError):  # the waiter raises on the Failed status this run is meant to reach
        strict.wait(delay=2, max_attempts=300)
    strict_description = strict.describe()
    return {"status": execution.describe()["PipelineExecutionStatus"],
            "steps": {s["StepName"]: s["StepStatus"] for s in steps},
            "package_status": package["ModelApprovalStatus"],
            "package_model_data": package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
            "scored_rows": len([line for line in scores.splitlines() if line.strip()]),
            "scores_finite": bool(np.isfinite([float(v) for v in scores.split()]).all()),
            "strict_status": strict_description["PipelineExecutionStatus"],
            "strict_failure": strict_description.get("FailureReason", ""),
            "strict_steps": {s["StepName"]: s["StepStatus"] for s in strict.list_steps()}}


if __name__ == "__main__":
    print("\nRESULT " + json.dumps(main()))
