"""Every script in examples/ runs end to end, unchanged, against a real sagelab server.

The scripts are the SageMaker Python SDK's well-known notebook flows; they reach sagelab only through the
environment (`AWS_ENDPOINT_URL`, the credentials file, the SDK defaults file). They spend most of their
time in the SDK's own polling sleeps, so the available ones run at once. An example whose algorithm,
data format or API sagelab does not have yet is skipped, naming what is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sagemaker  # noqa: F401 - a test extra: a missing SDK must fail, not skip
from helpers import client_env

from sagelab.support_table import FEATURES, missing

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEADLINE_SECONDS = 1100


def needs_of(example: str) -> list[str]:
    return list(dict.fromkeys(need for feature in FEATURES if feature.example == example for need in feature.needs))


def _skip_reason(example: str) -> str | None:
    gaps = missing(needs_of(example))
    return f"sagelab does not have {', '.join(gaps)} yet" if gaps else None


@pytest.fixture(scope="module")
def runs(server, tmp_path_factory) -> dict[str, tuple[int, str]]:
    folder = tmp_path_factory.mktemp("examples")
    env = client_env(server, folder)
    runnable = sorted({f.example for f in FEATURES if f.example and _skip_reason(f.example) is None})
    started = {}
    for example in runnable:
        out = (folder / f"{example}.out").open("wb")
        started[example] = (subprocess.Popen([sys.executable, str(EXAMPLES / example)], stdout=out,
                                             stderr=subprocess.STDOUT, env=env, cwd=folder), out)
    deadline = time.monotonic() + DEADLINE_SECONDS
    results = {}
    for example, (process, out) in started.items():
        try:
            code = process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        out.close()
        results[example] = (code, (folder / f"{example}.out").read_text(errors="replace"))
    return results


def result_of(runs, example: str) -> tuple[dict, str]:
    reason = _skip_reason(example)
    if reason:
        pytest.skip(f"examples/{example}: {reason}")
    code, output = runs[example]
    assert code == 0, f"examples/{example} exited with {code}:\n{output[-6000:]}"
    # The SDK's waiters print progress dots without a newline, so RESULT may share a line with them.
    last = [line for line in output.splitlines() if "RESULT {" in line][-1]
    return json.loads(last.split("RESULT ", 1)[1]), output


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_xgboost_estimator_csv_endpoint_and_batch_transform(runs):
    result, output = result_of(runs, "xgboost_breast_cancer.py")
    assert result["validation_auc"] >= 0.97
    assert result["endpoint_rows"] == result["test_rows"]
    assert result["endpoint_auc"] >= 0.97 and result["endpoint_accuracy"] >= 0.9
    assert result["batch_labels_match"]  # join_source=Input + output_filter kept each record's label
    assert result["batch_auc"] == pytest.approx(result["endpoint_auc"])
    assert result["batch_vs_endpoint_max_diff"] < 1e-6
    # fit() streamed the job's log through CloudWatch Logs and followed its secondary statuses.
    assert "[99]\ttrain-auc:" in output and "validation-auc:" in output
    assert "Completed - Training job completed" in output


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_linear_learner_record_set_and_protobuf_predictor(runs):
    result, _ = result_of(runs, "linear_learner_digits.py")
    assert result["rows"] == result["test_rows"]
    assert result["labels_are_binary"]
    assert result["accuracy"] >= 0.97 and result["auc"] >= 0.98


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_kmeans_record_set_and_protobuf_predictor(runs):
    result, _ = result_of(runs, "kmeans_digits.py")
    assert result["rows"] == result["input_rows"]
    assert result["cluster_ids_in_range"] and result["distances_non_negative"]
    assert result["clusters_used"] >= 8
    assert result["adjusted_rand"] >= min(0.5, result["sklearn_adjusted_rand"] - 0.15)


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_pca_record_set_and_protobuf_predictor(runs):
    result, _ = result_of(runs, "pca_digits.py")
    assert result["rows"] == result["input_rows"] and result["width"] == 8
    assert result["reconstruction_r2"] >= result["sklearn_variance_kept"] - 0.03
    assert result["variance_kept"] == pytest.approx(result["reconstruction_r2"], abs=0.03)  # orthonormal axes


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_hyperparameter_tuner_analytics_and_best_model(runs):
    result, _ = result_of(runs, "tuning_xgboost.py")
    assert result["training_jobs"] == result["completed_jobs"] == 6
    assert result["tuned_hyperparameters_present"]
    assert result["best_is_best_in_analytics"]
    assert result["best_validation_auc"] >= 0.98
    assert result["scored_rows"] == result["test_rows"] and result["test_auc"] >= 0.95  # 86 test rows


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_sklearn_script_mode_fit_deploy_and_transform(runs):
    result, output = result_of(runs, "sklearn_random_forest.py")
    assert result["job_accuracy"] >= 0.9  # the script's own metric line, through metric_definitions
    assert result["endpoint_accuracy"] >= 0.9 and result["test_rows"] == 36
    assert result["batch_matches_endpoint"]
    assert "test accuracy:" in output  # the script's stdout streamed by fit()


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_pytorch_script_mode_cnn_fit_and_deploy(runs):
    pytest.importorskip("torch")
    result, output = result_of(runs, "pytorch_digits_cnn.py")
    assert result["job_accuracy"] >= 0.9 and result["endpoint_rows"] == 100
    assert result["endpoint_accuracy"] >= 0.9
    assert "Train Epoch: 12" in output


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_spot_training_resumes_from_the_checkpoints_of_an_earlier_job(runs):
    pytest.importorskip("torch")
    result, output = result_of(runs, "spot_training_checkpoints.py")
    assert result["spot"] == [True, True] and result["checkpoint_uri_echoed"] and result["max_wait"] == 1200
    # The second job found the first one's four checkpoints and trained epochs 5 to 8 only.
    assert "Resuming from checkpoint checkpoint-004.pt: epoch 5" in output
    assert result["checkpoints_saved"] == [f"checkpoint-{epoch:03d}.pt" for epoch in range(1, 9)]
    assert result["billable_not_above_training"] and result["test_accuracy"] >= 0.9


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_pytorch_ddp_on_two_instances(runs):
    pytest.importorskip("torch")
    result, output = result_of(runs, "pytorch_ddp_two_instances.py")
    assert result["instance_count"] == 2 and result["world_size"] == 2
    assert result["distributed_flag"] == "true"
    # The DistributedSampler gave each rank half the training set.
    assert result["samples_per_rank"] == -(-result["train_samples"] // 2)
    assert result["artifact"] == ["model.pth", "training.json"] and result["test_accuracy"] >= 0.9
    assert "rank 1 of 2 on algo-2 (gloo)" in output


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_SECONDS + 120)
def test_abalone_style_pipeline_process_train_evaluate_condition_register(runs):
    result, _ = result_of(runs, "pipeline_diabetes.py")
    assert result["status"] == "Succeeded"
    assert set(result["steps"].values()) == {"Succeeded"}
    assert set(result["steps"]) == {"Preprocess", "Train", "Evaluate", "CheckMse", "Register-RegisterModel",
                                    "CreateModel-CreateModel", "Score"}
    assert result["package_status"] == "PendingManualApproval"  # the ModelApprovalStatus parameter's default
    assert result["package_model_data"].endswith("/output/model.tar.gz")
    assert result["scored_rows"] == 67 and result["scores_finite"]  # 15 % of the 442 diabetes rows
    # The same pipeline with a threshold no model meets takes the else branch and fails with its message.
    assert result["strict_status"] == "Failed"
    assert result["strict_failure"] == "Step MseTooHigh failed: Execution failed: the model's MSE is above 1.0"
    assert result["strict_steps"]["MseTooHigh"] == "Failed" and "Register-RegisterModel" not in result["strict_steps"]
