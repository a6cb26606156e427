"""Script-mode training through the real SageMaker SDK and boto3: the user's train.py in its own process,
with the training toolkit's environment, against a real server."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from conftest import unique
from helpers import wait_failed, wait_job
from script_helpers import (
    SKLEARN_IMAGE,
    iris_csv,
    read_tarball,
    script_job_request,
    sourcedir_tarball,
    write_source,
)

TRAIN = """
import argparse, json, os, sys
import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int, default=10)
    parser.add_argument("--criterion", default="gini")
    parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--validation", default=os.environ["SM_CHANNEL_VALIDATION"])
    args = parser.parse_args()
    train = np.loadtxt(os.path.join(args.train, "train.csv"), delimiter=",")
    validation = np.loadtxt(os.path.join(args.validation, "validation.csv"), delimiter=",")
    model = RandomForestClassifier(n_estimators=args.n_estimators, criterion=args.criterion, random_state=0)
    model.fit(train[:, 1:], train[:, 0])
    print(f"validation:accuracy={model.score(validation[:, 1:], validation[:, 0]):.4f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    seen = {name: os.environ.get(name) for name in (
        "SM_HPS", "SM_CHANNELS", "SM_HOSTS", "SM_CURRENT_HOST", "SM_NUM_CPUS", "SM_NUM_GPUS", "SM_USER_ARGS",
        "SM_HP_N-ESTIMATORS", "SM_HP_N_ESTIMATORS", "SM_HP_CRITERION", "SM_MODULE_NAME", "SM_USER_ENTRY_POINT",
        "SM_OUTPUT_DATA_DIR", "SM_MODEL_DIR", "SM_LOG_LEVEL", "TEAM")}
    seen["argv"] = sys.argv[1:]
    seen["training_env_keys"] = sorted(json.loads(os.environ["SM_TRAINING_ENV"]))
    seen["hyperparameters_json"] = json.load(open("/opt/ml/input/config/hyperparameters.json"))
    seen["resourceconfig"] = json.load(open("/opt/ml/input/config/resourceconfig.json"))
    seen["cwd_has_helper"] = os.path.exists("helper.py")
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""


@pytest.mark.slow
def test_sklearn_estimator_runs_the_script_with_the_toolkit_environment(sdk_env, s3, tmp_path):
    from sagemaker.inputs import TrainingInput
    from sagemaker.sklearn import SKLearn

    bucket = unique("script-train")
    s3.create_bucket(Bucket=bucket)
    train, validation = iris_csv(tmp_path / "data")
    s3.upload_file(str(train), bucket, "iris/train/train.csv")
    s3.upload_file(str(validation), bucket, "iris/validation/validation.csv")
    source = write_source(tmp_path / "src", {"train.py": TRAIN, "helper.py": "VALUE = 1\n"})
    estimator = SKLearn(entry_point="train.py", source_dir=str(source), framework_version="1.2-1",
                        instance_type="ml.m5.large", role="arn:aws:iam::111122223333:role/SageMakerRole",
                        hyperparameters={"n-estimators": 25, "criterion": "entropy"},
                        environment={"TEAM": "lab"}, output_path=f"s3://{bucket}/output",
                        metric_definitions=[{"Name": "validation:accuracy",
                                             "Regex": "validation:accuracy=([0-9.]+)"}])
    estimator.fit({"train": TrainingInput(f"s3://{bucket}/iris/train/", content_type="text/csv"),
                   "validation": TrainingInput(f"s3://{bucket}/iris/validation/")}, logs="None")
    desc = estimator.latest_training_job.describe()
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    assert metrics["validation:accuracy"] >= 0.85

    model_files = read_tarball(s3, desc["ModelArtifacts"]["S3ModelArtifacts"])
    assert list(model_files) == ["model.joblib"]
    output = desc["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz")
    seen = json.loads(read_tarball(s3, output)["seen.json"])
    assert json.loads(seen["SM_HPS"]) == {"n-estimators": 25, "criterion": "entropy"}
    assert seen["argv"] == ["--criterion", "entropy", "--n-estimators", "25"]
    assert json.loads(seen["SM_USER_ARGS"]) == seen["argv"]
    assert seen["SM_HP_N_ESTIMATORS"] == "25" and seen["SM_HP_CRITERION"] == "entropy"
    assert json.loads(seen["SM_CHANNELS"]) == ["train", "validation"]
    assert json.loads(seen["SM_HOSTS"]) == ["algo-1"] and seen["SM_CURRENT_HOST"] == "algo-1"
    assert int(seen["SM_NUM_CPUS"]) >= 1 and seen["SM_NUM_GPUS"] == "0"
    assert seen["SM_MODULE_NAME"] == "train" and seen["SM_USER_ENTRY_POINT"] == "train.py"
    assert seen["SM_MODEL_DIR"].endswith("/model") and not seen["SM_MODEL_DIR"].startswith("/opt/ml")
    assert seen["SM_LOG_LEVEL"] == "20" and seen["TEAM"] == "lab"
    assert {"channel_input_dirs", "hosts", "hyperparameters", "model_dir", "num_cpus"} <= set(
        seen["training_env_keys"])
    # The files SageMaker writes, read through /opt/ml paths spelled in the script's own code.
    assert seen["hyperparameters_json"]["sagemaker_program"] == '"train.py"'
    assert seen["resourceconfig"]["current_host"] == "algo-1"
    assert seen["cwd_has_helper"]


FAILS = """
import sys
print("about to fail")
print("noise", file=sys.stderr)
raise ValueError("the learning rate must be positive")
"""

WRITES_FAILURE = """
import sys
with open("/opt/ml/output/failure", "w") as f:
    f.write("ConfigError: no GPU found")
sys.exit(3)
"""


def _source(s3, bucket: str, files: dict[str, str]) -> str:
    key = f"code/{unique('src')}/sourcedir.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=sourcedir_tarball(files))
    return f"s3://{bucket}/{key}"


@pytest.mark.slow
def test_a_failing_script_fails_the_job_with_its_exit_and_error(sm, s3, bucket):
    name = unique("script-fails")
    sm.create_training_job(**script_job_request(name, bucket, _source(s3, bucket, {"train.py": FAILS}), "train.py"))
    desc = wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == "Failed"
    reason = desc["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:")
    assert "ExitCode 1" in reason and "ValueError: the learning rate must be positive" in reason

    name = unique("script-failure-file")
    sm.create_training_job(**script_job_request(name, bucket, _source(s3, bucket, {"train.py": WRITES_FAILURE}),
                                                "train.py"))
    reason = wait_failed(sm, name)["FailureReason"]
    assert "ExitCode 3" in reason and 'ErrorMessage "ConfigError: no GPU found"' in reason


@pytest.mark.slow
def test_a_missing_entry_point_is_a_client_error_naming_it(sm, s3, bucket):
    name = unique("script-missing")
    sm.create_training_job(**script_job_request(name, bucket, _source(s3, bucket, {"other.py": "print(1)"}),
                                                "train.py"))
    desc = wait_failed(sm, name)
    assert desc["FailureReason"].startswith("ClientError: The entry point 'train.py'")
    assert "other.py" in desc["FailureReason"]


def test_an_unknown_framework_version_or_no_entry_point_is_refused_at_create(sm, bucket):
    request = script_job_request(unique("script-version"), bucket, f"s3://{bucket}/x.tar.gz", "train.py",
                                 image=SKLEARN_IMAGE.replace("1.2-1", "9.9-1"))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.create_training_job(**request)
    message = caught.value.response["Error"]["Message"]
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "'9.9-1'" in message and "1.2-1" in message and "sagemaker-scikit-learn" in message

    request = script_job_request(unique("script-no-program"), bucket, f"s3://{bucket}/x.tar.gz", "train.py")
    del request["HyperParameters"]["sagemaker_program"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.create_training_job(**request)
    assert "sagemaker_program is required" in caught.value.response["Error"]["Message"]


# inflection is in no dependency of sagelab (tabulate was, once sacrebleu came in), so the job can only import
# it from the environment built for its requirements.txt.
USES_INFLECTION = """
import os, inflection
open(os.path.join(os.environ["SM_MODEL_DIR"], "table.txt"), "w").write(inflection.camelize("table_text"))
"""


@pytest.mark.slow
def test_requirements_are_installed_once_into_an_environment_of_their_own(sm, s3, bucket, server):
    files = {"train.py": USES_INFLECTION, "requirements.txt": "inflection==0.5.1\n"}
    names = [unique("script-reqs"), unique("script-reqs-again")]
    for name in names:
        sm.create_training_job(**script_job_request(name, bucket, _source(s3, bucket, files), "train.py"))
        desc = wait_job(sm, name)
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        assert "table.txt" in read_tarball(s3, desc["ModelArtifacts"]["S3ModelArtifacts"])
    second_log = (server.home / "logs" / "TrainingJobs" / f"{names[1]}.log").read_text()
    assert "already installed" in second_log
    with pytest.raises(ImportError):  # the server's own interpreter is unchanged
        __import__("inflection")

    name = unique("script-bad-reqs")
    bad = {"train.py": "print(1)", "requirements.txt": "sagelab-no-such-package==0.0.1\n"}
    sm.create_training_job(**script_job_request(name, bucket, _source(s3, bucket, bad), "train.py"))
    reason = wait_failed(sm, name)["FailureReason"]
    assert reason.startswith("AlgorithmError: InstallRequirementsError:")
    assert "sagelab-no-such-package" in reason


XGB_TRAIN = """
import argparse, os
import numpy as np
import xgboost as xgb

parser = argparse.ArgumentParser()
parser.add_argument("--num_round", type=int)
args, _ = parser.parse_known_args()
data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
booster = xgb.train({"objective": "multi:softmax", "num_class": 3}, xgb.DMatrix(data[:, 1:], label=data[:, 0]),
                    num_boost_round=args.num_round)
booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model"))
print("framework mode ran", args.num_round, "rounds")
"""


@pytest.mark.slow
def test_the_xgboost_image_is_built_in_without_a_program_and_a_framework_with_one(sm, s3, bucket, tmp_path, server):
    train, _ = iris_csv(tmp_path)
    s3.upload_file(str(train), bucket, "iris/train/train.csv")
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    name = unique("xgb-framework")
    sm.create_training_job(**script_job_request(name, bucket, _source(s3, bucket, {"train.py": XGB_TRAIN}),
                                                "train.py", image=image, hyperparameters={"num_round": "5"},
                                                channels={"train": f"s3://{bucket}/iris/train/"}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert "framework mode ran 5 rounds" in (server.home / "logs" / "TrainingJobs" / f"{name}.log").read_text()

    request = script_job_request(unique("xgb-builtin"), bucket, "", "", image=image,
                                 hyperparameters={"num_round": "5", "objective": "multi:softmax", "num_class": "3"},
                                 channels={"train": f"s3://{bucket}/iris/train/"})
    request["HyperParameters"] = {k: v for k, v in request["HyperParameters"].items()
                                  if not k.startswith("sagemaker_")}
    request["InputDataConfig"][0]["ContentType"] = "text/csv"
    sm.create_training_job(**request)
    desc = wait_job(sm, request["TrainingJobName"])
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert "xgboost-model" in read_tarball(s3, desc["ModelArtifacts"]["S3ModelArtifacts"])
