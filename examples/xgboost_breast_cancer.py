"""Built-in XGBoost with the generic Estimator and CSV data, in the shape of SageMaker's XGBoost notebooks.

Train on a CSV channel, deploy an endpoint and score it with the CSV serializer, then score the same
rows with a batch transform that joins each prediction to its input record. Nothing here is specific to
sagelab: it runs as is against AWS (with a real role ARN) or against a sagelab server:

    sagelab server --home ~/.sagelab &
    eval "$(sagelab env --home ~/.sagelab)"     # AWS_ENDPOINT_URL, credentials, region, SDK defaults
    python examples/xgboost_breast_cancer.py

The last line printed is `RESULT {...}` with the quality figures, for scripts that run the example.
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
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/xgboost-breast-cancer"


def write_csv(path: str, *columns: np.ndarray) -> str:
    """SageMaker's built-in XGBoost reads CSV without a header, label first."""
    np.savetxt(path, np.column_stack(columns), delimiter=",", fmt="%.10g")
    return path


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    region = session.boto_region_name

    # --- data: 70 % train, 15 % validation, 15 % test ----------------------------------------------------
    features, labels = load_breast_cancer(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(features, labels, test_size=0.3, stratify=labels,
                                                        random_state=7)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=7)
    with tempfile.TemporaryDirectory() as tmp:
        train_uri = session.upload_data(write_csv(f"{tmp}/train.csv", y_train, x_train), bucket,
                                        f"{PREFIX}/train")
        val_uri = session.upload_data(write_csv(f"{tmp}/validation.csv", y_val, x_val), bucket,
                                      f"{PREFIX}/validation")
        # The batch input keeps the label in front: the transform filters it out and joins it back.
        batch_uri = session.upload_data(write_csv(f"{tmp}/test.csv", y_test, x_test), bucket, f"{PREFIX}/batch")

    # --- train -----------------------------------------------------------------------------------------------
    image = sagemaker.image_uris.retrieve("xgboost", region, version="1.7-1")
    xgb = Estimator(image, ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                    output_path=f"s3://{bucket}/{PREFIX}/output", sagemaker_session=session)
    xgb.set_hyperparameters(objective="binary:logistic", num_round=100, max_depth=4, eta=0.2, subsample=0.8,
                            eval_metric="auc")
    xgb.fit({"train": TrainingInput(train_uri, content_type="text/csv"),
             "validation": TrainingInput(val_uri, content_type="text/csv")})
    job = xgb.latest_training_job.describe()
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    print(f"validation:auc reported by the training job: {metrics['validation:auc']:.4f}")

    # --- real-time endpoint ----------------------------------------------------------------------------------
    predictor = xgb.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                           serializer=CSVSerializer(), deserializer=CSVDeserializer())
    try:
        rows = predictor.predict(x_test)  # one CSV request; the answer is one score per line
        endpoint_scores = np.array([float(row[0]) for row in rows])
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    print(f"endpoint: {len(endpoint_scores)} scores, test AUC {roc_auc_score(y_test, endpoint_scores):.4f}")

    # --- batch transform, joining each prediction to its input record ----------------------------------------
    transformer = xgb.transformer(instance_count=1, instance_type="ml.m5.large", strategy="MultiRecord",
                                  assemble_with="Line", accept="text/csv",
                                  output_path=f"s3://{bucket}/{PREFIX}/batch-output")
    transformer.transform(batch_uri, content_type="text/csv", split_type="Line",
                          input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]")
    joined = np.loadtxt(session.read_s3_file(bucket, f"{PREFIX}/batch-output/test.csv.out").splitlines(),
                        delimiter=",", ndmin=2)
    batch_labels, batch_scores = joined[:, 0], joined[:, 1]
    print(f"batch transform: {len(batch_scores)} records, test AUC {roc_auc_score(batch_labels, batch_scores):.4f}")

    return {
        "training_job": job["TrainingJobName"],
        "validation_auc": metrics["validation:auc"],
        "endpoint_auc": roc_auc_score(y_test, endpoint_scores),
        "endpoint_accuracy": accuracy_score(y_test, endpoint_scores > 0.5),
        "test_rows": len(y_test),
        "endpoint_rows": len(endpoint_scores),
        "batch_labels_match": bool(np.array_equal(batch_labels, y_test)),
        "batch_auc": roc_auc_score(batch_labels, batch_scores),
        "batch_vs_endpoint_max_diff": float(np.max(np.abs(batch_scores - endpoint_scores))),
    }


if __name__ == "__main__":
    print("\nRESULT " + json.dumps(main()))
