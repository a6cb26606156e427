"""Hyperparameter tuning of the built-in XGBoost, in the shape of SageMaker's tuning notebooks.

A `HyperparameterTuner` searches `eta`, `max_depth` and `min_child_weight` to maximise `validation:auc`
with Bayesian optimisation; the results are read back with `tuner.analytics()` and the best model is
deployed and scored. Data: scikit-learn's breast cancer set. Runs as is against AWS (with a real role
ARN) or a sagelab server (`eval "$(sagelab env)"` first). The last line printed is `RESULT {...}`.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import sagemaker
from sagemaker.deserializers import CSVDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.serializers import CSVSerializer
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/tuning-xgboost"
MAX_JOBS = 6


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    features, labels = load_breast_cancer(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(features, labels, test_size=0.3, stratify=labels,
                                                        random_state=11)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=11)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {}
        for channel, (x, y) in {"train": (x_train, y_train), "validation": (x_val, y_val)}.items():
            np.savetxt(f"{tmp}/{channel}.csv", np.column_stack([y, x]), delimiter=",", fmt="%.10g")
            uri = session.upload_data(f"{tmp}/{channel}.csv", bucket, f"{PREFIX}/{channel}")
            inputs[channel] = TrainingInput(uri, content_type="text/csv")

    image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, version="1.7-1")
    xgb = Estimator(image, ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                    output_path=f"s3://{bucket}/{PREFIX}/output", sagemaker_session=session)
    xgb.set_hyperparameters(objective="binary:logistic", num_round=60, eval_metric="auc")
    tuner = HyperparameterTuner(
        xgb, objective_metric_name="validation:auc", objective_type="Maximize", strategy="Bayesian",
        hyperparameter_ranges={"eta": ContinuousParameter(0.05, 0.5), "max_depth": IntegerParameter(2, 6),
                               "min_child_weight": ContinuousParameter(1, 8)},
        max_jobs=MAX_JOBS, max_parallel_jobs=2)
    tuner.fit(inputs)

    results = tuner.analytics().dataframe()
    best_job = tuner.best_training_job()
    print(results[["TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue"]].to_string())
    print(f"best training job: {best_job}")

    predictor = tuner.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             serializer=CSVSerializer(), deserializer=CSVDeserializer())
    try:
        scores = np.array([float(row[0]) for row in predictor.predict(x_test)])
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    completed = results[results["TrainingJobStatus"] == "Completed"]
    best_row = completed.loc[completed["FinalObjectiveValue"].idxmax()]
    return {"tuning_job": tuner.latest_tuning_job.name, "training_jobs": len(results),
            "completed_jobs": len(completed), "best_training_job": best_job,
            "best_is_best_in_analytics": best_row["TrainingJobName"] == best_job,
            "best_validation_auc": float(best_row["FinalObjectiveValue"]),
            "tuned_hyperparameters_present": all(c in results.columns for c in ("eta", "max_depth",
                                                                                "min_child_weight")),
            "test_auc": roc_auc_score(y_test, scores), "test_rows": len(y_test), "scored_rows": len(scores)}


if __name__ == "__main__":
    print("\nRESULT " + json.dumps(main()))
