"""The SageMaker SDK's `sagemaker.workflow` against a real server: a tuning step whose best model is
created, DependsOn, caching, and the pipeline and execution calls the SDK makes."""

from __future__ import annotations

import os

import pytest
import sagemaker  # a test extra: a missing SDK must fail, not skip
from conftest import unique
from helpers import ROLE, client_env, upload_breast_cancer


@pytest.fixture
def session(server, monkeypatch, tmp_path):
    """A PipelineSession made in the environment a user sets (`eval "$(sagelab env)"`)."""
    from sagemaker.workflow.pipeline_context import PipelineSession

    for name in [n for n in os.environ if n.startswith(("AWS_", "SAGEMAKER_"))]:
        monkeypatch.delenv(name)
    for name, value in client_env(server, tmp_path).items():
        if name.startswith(("AWS_", "SAGEMAKER_")):
            monkeypatch.setenv(name, value)
    return PipelineSession()


def test_tuning_step_best_model_caching_and_depends_on(session, s3, tmp_path):
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.model import Model
    from sagemaker.tuner import HyperparameterTuner, IntegerParameter
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.steps import CacheConfig, TrainingStep, TuningStep

    bucket = session.default_bucket()
    prefix = unique("sdk-pipeline")
    data = unique("sdk-pipeline-data")
    s3.create_bucket(Bucket=data)
    upload_breast_cancer(s3, data, tmp_path)
    inputs = {channel: TrainingInput(f"s3://{data}/data/{channel}/", content_type="text/csv")
              for channel in ("train", "validation")}
    image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, version="1.7-1")
    estimator = Estimator(image, ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                          output_path=f"s3://{bucket}/{prefix}", sagemaker_session=session)
    estimator.set_hyperparameters(objective="binary:logistic", num_round=5, eval_metric="auc")
    tuner = HyperparameterTuner(estimator, objective_metric_name="validation:auc", objective_type="Maximize",
                                hyperparameter_ranges={"max_depth": IntegerParameter(1, 4)}, strategy="Random",
                                max_jobs=2, max_parallel_jobs=2)
    cache = CacheConfig(enable_caching=True, expire_after="P1D")
    step_tune = TuningStep(name="Tune", step_args=tuner.fit(inputs), cache_config=cache)
    baseline = TrainingStep(name="Baseline", step_args=estimator.fit(inputs), depends_on=[step_tune])
    model = Model(image_uri=image, model_data=step_tune.get_top_model_s3_uri(top_k=0, s3_bucket=bucket,
                                                                             prefix=prefix),
                  role=ROLE, sagemaker_session=session)
    step_model = ModelStep(name="BestModel", step_args=model.create(instance_type="ml.m5.large"))
    pipeline = Pipeline(name=unique("sdk-tuning"), steps=[step_tune, baseline, step_model],
                        sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)

    execution = pipeline.start()
    execution.wait(delay=1, max_attempts=300)
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert {name: s["StepStatus"] for name, s in steps.items()} == {
        "Tune": "Succeeded", "Baseline": "Succeeded", "BestModel-CreateModel": "Succeeded"}
    assert steps["Baseline"]["StartTime"] >= steps["Tune"]["EndTime"]  # DependsOn
    client = session.sagemaker_client
    tuning_job = steps["Tune"]["Metadata"]["TuningJob"]["Arn"].rsplit("/", 1)[-1]
    best = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job)["BestTrainingJob"]
    best_artifacts = client.describe_training_job(
        TrainingJobName=best["TrainingJobName"])["ModelArtifacts"]["S3ModelArtifacts"]
    created = client.describe_model(
        ModelName=steps["BestModel-CreateModel"]["Metadata"]["Model"]["Arn"].rsplit("/", 1)[-1])
    assert created["PrimaryContainer"]["ModelDataUrl"] == best_artifacts

    again = pipeline.start()
    again.wait(delay=1, max_attempts=300)
    cached = {s["StepName"]: s for s in again.list_steps()}["Tune"]
    assert cached["CacheHitResult"]["SourcePipelineExecutionArn"] == execution.arn
    listed = pipeline.list_executions()["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in listed] == [again.arn, execution.arn]
    assert pipeline.describe()["PipelineName"] == pipeline.name
    pipeline.delete()


def test_execution_stop_from_the_sdk_stops_the_running_processing_job(session, tmp_path):
    import time

    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.steps import ProcessingStep

    (tmp_path / "sleep.py").write_text("import time\ntime.sleep(60)\n")
    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type="ml.m5.xlarge",
                                 instance_count=1, sagemaker_session=session)
    step = ProcessingStep(name="Sleep", step_args=processor.run(code=str(tmp_path / "sleep.py")))
    pipeline = Pipeline(name=unique("sdk-stop"), steps=[step], sagemaker_session=session)
    pipeline.create(role_arn=ROLE)
    execution = pipeline.start()
    deadline = time.monotonic() + 60
    while not [s for s in execution.list_steps() if s["Metadata"].get("ProcessingJob", {}).get("Arn")]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    execution.stop()
    while execution.describe()["PipelineExecutionStatus"] != "Stopped":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    job = execution.list_steps()[0]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    assert session.sagemaker_client.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"] == "Stopped"
    pipeline.delete()
