"""What a SageMaker Pipeline adds to the jobs it runs, measured side by side in one run.

1. A chain (Prepare -> Train -> Evaluate -> Model -> Score): the execution's wall time, from
   StartPipelineExecution until DescribePipelineExecution says Succeeded, over the sum of the same five jobs'
   own wall times when they are created directly with boto3, one after another, each from its Create call
   until its Describe says Completed. Target <= 1.05.
2. A fan-out (Prepare -> {TrainA, TrainB, Wait} -> Model): the execution's wall time over the critical
   path, Prepare + the longest of the three + Model, each measured directly as in 1. The three middle
   steps run at once in the pipeline; the two trainings then share the machine's cores, which the direct
   runs (one at a time) do not, so on a small machine this ratio also shows that contention.

Each part also prints, within every execution, its wall time minus its own steps' times (their critical
path): what the pipeline adds, free of the run-to-run noise of the jobs on a shared machine. Both sides
poll every 50 ms. The server runs up to 4 jobs at once (SAGELAB_MAX_CONCURRENT_JOBS), so the
engine's slots do not serialise the fan-out. Repeats alternate direct and pipeline runs; medians printed.

Run: PYTHONPATH=src .venv/bin/python benchmarks/pipeline.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np

from sagelab.embedded import ServerProcess

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::000000000000:role/bench"
BUCKET = "pipeline-bench"
CODE = "/opt/ml/processing/input/code"
POLL = 0.05

PREPARE = """
import numpy as np
data = np.loadtxt("/opt/ml/processing/raw/raw.csv", delimiter=",")
data[:, 1:] = (data[:, 1:] - data[:, 1:].mean(axis=0)) / data[:, 1:].std(axis=0)
split = int(0.8 * len(data))
np.savetxt("/opt/ml/processing/train/train.csv", data[:split], delimiter=",", fmt="%.6g")
np.savetxt("/opt/ml/processing/test/test.csv", data[split:], delimiter=",", fmt="%.6g")
np.savetxt("/opt/ml/processing/features/features.csv", data[split:, 1:], delimiter=",", fmt="%.6g")
"""
EVALUATE = """
import json, tarfile
import numpy as np, xgboost
tarfile.open("/opt/ml/processing/model/model.tar.gz").extractall(".", filter="data")
booster = xgboost.Booster()
booster.load_model("xgboost-model")
test = np.loadtxt("/opt/ml/processing/test/test.csv", delimiter=",")
mse = float(np.mean((booster.predict(xgboost.DMatrix(test[:, 1:])) - test[:, 0]) ** 2))
json.dump({"mse": mse}, open("/opt/ml/processing/evaluation/evaluation.json", "w"))
"""
WAIT = """
import time
time.sleep(3)
"""


def _input(name: str, uri, local: str) -> dict:
    return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                           "S3InputMode": "File"}}


def _output(name: str, uri, local: str) -> dict:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


def processing(script: str, inputs: list[dict], outputs: list[dict]) -> dict:
    return {"ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 5}},
            "AppSpecification": {"ImageUri": SKLEARN, "ContainerEntrypoint": ["python3", f"{CODE}/{script}.py"]},
            "RoleArn": ROLE,
            "ProcessingInputs": [*inputs, _input("code", f"s3://{BUCKET}/code/{script}.py", CODE)],
            **({"ProcessingOutputConfig": {"Outputs": outputs}} if outputs else {})}


def training(train_uri, output: str, depth: int) -> dict:
    return {"AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"}, "RoleArn": ROLE,
            "HyperParameters": {"objective": "reg:squarederror", "num_round": "150", "max_depth": str(depth)},
            "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train_uri}}}],
            "OutputDataConfig": {"S3OutputPath": output},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}


def model(model_data) -> dict:
    return {"PrimaryContainer": {"Image": XGBOOST, "ModelDataUrl": model_data}, "ExecutionRoleArn": ROLE}


def transform(model_name, data_uri, output: str) -> dict:
    return {"ModelName": model_name, "TransformInput": {"DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": data_uri}}, "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": output, "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}


# --- the pipelines -----------------------------------------------------------------------------------
def under(base: dict, leaf: str) -> dict:
    """`Std:Join` of this execution's own prefix and a leaf, as the SDK writes default output paths."""
    return {"Std:Join": {"On": base["On"], "Values": [*base["Values"], leaf]}}


def prepare_step(base: dict) -> dict:
    return {"Name": "Prepare", "Type": "Processing", "Arguments": processing("prepare", [
        _input("raw", f"s3://{BUCKET}/raw/", "/opt/ml/processing/raw")], [
        _output("train", under(base, "train"), "/opt/ml/processing/train"),
        _output("test", under(base, "test"), "/opt/ml/processing/test"),
        _output("features", under(base, "features"), "/opt/ml/processing/features")])}


def output_of(step: str, name: str) -> dict:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


def chain_definition() -> str:
    base = {"On": "/", "Values": [f"s3://{BUCKET}", "pipeline", {"Get": "Execution.PipelineExecutionId"}]}
    artifacts = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    steps = [prepare_step(base),
             {"Name": "Train", "Type": "Training", "Arguments": training(output_of("Prepare", "train"),
                                                                         f"s3://{BUCKET}/pipeline/models", 6)},
             {"Name": "Evaluate", "Type": "Processing", "Arguments": processing("evaluate", [
                 _input("model", artifacts, "/opt/ml/processing/model"),
                 _input("test", output_of("Prepare", "test"), "/opt/ml/processing/test")], [
                 _output("evaluation", under(base, "evaluation"), "/opt/ml/processing/evaluation")])},
             {"Name": "Model", "Type": "Model", "Arguments": model(artifacts), "DependsOn": ["Evaluate"]},
             {"Name": "Score", "Type": "Transform", "Arguments": transform(
                 {"Get": "Steps.Model.ModelName"}, output_of("Prepare", "features"),
                 under(base, "scores"))}]
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": steps})


def fan_out_definition() -> str:
    base = {"On": "/", "Values": [f"s3://{BUCKET}", "fan", {"Get": "Execution.PipelineExecutionId"}]}
    steps = [prepare_step(base),
             {"Name": "TrainA", "Type": "Training", "Arguments": training(output_of("Prepare", "train"),
                                                                          f"s3://{BUCKET}/fan/a", 6)},
             {"Name": "TrainB", "Type": "Training", "Arguments": training(output_of("Prepare", "train"),
                                                                          f"s3://{BUCKET}/fan/b", 4)},
             {"Name": "Wait", "Type": "Processing", "Arguments": processing("wait", [], []),
              "DependsOn": ["Prepare"]},
             {"Name": "Model", "Type": "Model", "Arguments": model(
                 {"Get": "Steps.TrainA.ModelArtifacts.S3ModelArtifacts"}), "DependsOn": ["TrainB", "Wait"]}]
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": steps})


def run_pipeline(sm, name: str) -> tuple[float, dict[str, float]]:
    """The execution's wall time, and each of its steps' own time (EndTime - StartTime) as it reports them."""
    started = time.perf_counter()
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    while True:
        desc = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if desc["PipelineExecutionStatus"] != "Executing":
            break
        time.sleep(POLL)
    elapsed = time.perf_counter() - started
    if desc["PipelineExecutionStatus"] != "Succeeded":
        raise SystemExit(f"pipeline {name} ended {desc['PipelineExecutionStatus']}: {desc.get('FailureReason')}")
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, MaxResults=100)["PipelineExecutionSteps"]
    return elapsed, {s["StepName"]: (s["EndTime"] - s["StartTime"]).total_seconds() for s in steps}


def fan_out_path(steps: dict[str, float]) -> float:
    return steps["Prepare"] + max(steps["TrainA"], steps["TrainB"], steps["Wait"]) + steps["Model"]


# --- the same jobs, directly ---------------------------------------------------------------------------
def timed_job(sm, kind: str, request: dict) -> float:
    name = f"direct-{kind.lower()}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    getattr(sm, f"create_{kind.lower()}_job")(**{f"{kind}JobName": name, **request})
    while True:
        status = getattr(sm, f"describe_{kind.lower()}_job")(**{f"{kind}JobName": name})[f"{kind}JobStatus"]
        if status not in ("InProgress", "Stopping"):
            break
        time.sleep(POLL)
    if status != "Completed":
        raise SystemExit(f"direct {kind} job {name} ended {status}")
    return time.perf_counter() - started


def timed_model(sm, model_data: str) -> tuple[float, str]:
    name = f"direct-model-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    sm.create_model(ModelName=name, **model(model_data))
    return time.perf_counter() - started, name


def direct_steps(sm, *, fan_out: bool) -> dict[str, float]:
    run = f"s3://{BUCKET}/direct/{uuid.uuid4().hex[:8]}"
    times = {"Prepare": timed_job(sm, "Processing", processing("prepare", [
        _input("raw", f"s3://{BUCKET}/raw/", "/opt/ml/processing/raw")], [
        _output("train", f"{run}/train", "/opt/ml/processing/train"),
        _output("test", f"{run}/test", "/opt/ml/processing/test"),
        _output("features", f"{run}/features", "/opt/ml/processing/features")]))}
    if fan_out:
        times["TrainA"] = timed_job(sm, "Training", training(f"{run}/train", f"{run}/a", 6))
        times["TrainB"] = timed_job(sm, "Training", training(f"{run}/train", f"{run}/b", 4))
        times["Wait"] = timed_job(sm, "Processing", processing("wait", [], []))
        artifacts = latest_artifacts(sm)
        times["Model"], _ = timed_model(sm, artifacts)
        return times
    times["Train"] = timed_job(sm, "Training", training(f"{run}/train", f"{run}/models", 6))
    artifacts = latest_artifacts(sm)
    times["Evaluate"] = timed_job(sm, "Processing", processing("evaluate", [
        _input("model", artifacts, "/opt/ml/processing/model"),
        _input("test", f"{run}/test", "/opt/ml/processing/test")], [
        _output("evaluation", f"{run}/evaluation", "/opt/ml/processing/evaluation")]))
    times["Model"], model_name = timed_model(sm, artifacts)
    times["Score"] = timed_job(sm, "Transform", transform(model_name, f"{run}/features", f"{run}/scores"))
    return times


def latest_artifacts(sm) -> str:
    newest = sm.list_training_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    name = newest["TrainingJobSummaries"][0]["TrainingJobName"]
    return sm.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from sklearn.datasets import make_regression

    features, target = make_regression(n_samples=20_000, n_features=20, noise=5.0, random_state=3)
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "home", env={
            "SAGELAB_MAX_CONCURRENT_JOBS": "4"}) as server:
        s3, sm = server.client("s3"), server.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        raw = Path(tmp) / "raw.csv"
        np.savetxt(raw, np.column_stack([target, features]), delimiter=",", fmt="%.6g")
        s3.upload_file(str(raw), BUCKET, "raw/raw.csv")
        for script, code in (("prepare", PREPARE), ("evaluate", EVALUATE), ("wait", WAIT)):
            s3.put_object(Bucket=BUCKET, Key=f"code/{script}.py", Body=textwrap.dedent(code).encode())
        sm.create_pipeline(PipelineName="chain", RoleArn=ROLE, PipelineDefinition=chain_definition())
        sm.create_pipeline(PipelineName="fan-out", RoleArn=ROLE, PipelineDefinition=fan_out_definition())
        run_pipeline(sm, "chain")  # warm: the first jobs pay for imports the rest find done
        direct_steps(sm, fan_out=False)

        chain, sums, added = [], [], []
        for _ in range(args.repeats):
            steps = direct_steps(sm, fan_out=False)
            sums.append(sum(steps.values()))
            wall, own = run_pipeline(sm, "chain")
            chain.append(wall)
            added.append(wall - sum(own.values()))
            print(f"  chain: pipeline {wall:.2f} s; the five jobs one after another {sums[-1]:.2f} s "
                  f"({', '.join(f'{k} {v:.2f}' for k, v in steps.items())})")
        ratio = statistics.median(chain) / statistics.median(sums)
        print(f"1. chain (Prepare -> Train -> Evaluate -> Model -> Score): pipeline {statistics.median(chain):.2f} s "
              f"/ sum of its steps run one after another {statistics.median(sums):.2f} s = {ratio:.3f}  "
              "(target <= 1.05)")
        print(f"   within each execution: wall - the sum of its own steps' times = {statistics.median(added):.3f} s "
              "(median; what the pipeline adds, free of the run-to-run noise of the jobs themselves)")

        fan, paths, added = [], [], []
        for _ in range(args.repeats):
            steps = direct_steps(sm, fan_out=True)
            paths.append(fan_out_path(steps))
            wall, own = run_pipeline(sm, "fan-out")
            fan.append(wall)
            added.append(wall - fan_out_path(own))
            print(f"  fan-out: pipeline {wall:.2f} s; critical path {paths[-1]:.2f} s; all steps one after "
                  f"another {sum(steps.values()):.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in steps.items())})")
        ratio = statistics.median(fan) / statistics.median(paths)
        print(f"2. fan-out (Prepare -> {{TrainA, TrainB, Wait}} -> Model): pipeline {statistics.median(fan):.2f} s "
              f"/ critical path {statistics.median(paths):.2f} s = {ratio:.3f}  (the two trainings share the cores)")
        print(f"   within each execution: wall - its own critical path = {statistics.median(added):.3f} s (median)")


if __name__ == "__main__":
    main()
