"""Linear Learner with `record_set()` and the default protobuf predictor, in the shape of SageMaker's
"Introduction to Linear Learner with MNIST" notebook: is this handwritten digit a zero?

The estimator converts NumPy arrays to recordIO-protobuf shards plus a manifest (`record_set`), trains a
binary classifier, and its predictor sends and reads recordIO-protobuf. Data: scikit-learn's digits.
Runs as is against AWS (with a real role ARN) or a sagelab server (`eval "$(sagelab env)"` first).
The last line printed is `RESULT {...}`.
"""

from __future__ import annotations

import json
import os

import numpy as np
import sagemaker
from sagemaker import LinearLearner
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    digits = load_digits()
    features = (digits.data / 16.0).astype("float32")
    is_zero = (digits.target == 0).astype("float32")
    x_train, x_rest, y_train, y_rest = train_test_split(features, is_zero, test_size=0.3, stratify=is_zero,
                                                        random_state=3)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=3)

    linear = LinearLearner(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                           predictor_type="binary_classifier", binary_classifier_model_selection_criteria="f1",
                           output_path=f"s3://{bucket}/examples/linear-learner-digits/output",
                           data_location=f"s3://{bucket}/examples/linear-learner-digits/data",
                           sagemaker_session=session)
    train = linear.record_set(x_train, labels=y_train, channel="train")
    validation = linear.record_set(x_val, labels=y_val, channel="validation")
    linear.fit([train, validation], mini_batch_size=100, logs=False)
    print(f"trained {linear.latest_training_job.name}")

    predictor = linear.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = []
        for batch in np.array_split(x_test, 4):  # several requests, as the notebook does
            records += predictor.predict(batch)
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    labels = np.array([r.label["predicted_label"].float32_tensor.values[0] for r in records])
    scores = np.array([r.label["score"].float32_tensor.values[0] for r in records])
    print(f"endpoint: {len(records)} records, accuracy {accuracy_score(y_test, labels):.4f}")
    return {"training_job": linear.latest_training_job.name, "rows": len(records), "test_rows": len(y_test),
            "accuracy": accuracy_score(y_test, labels), "auc": roc_auc_score(y_test, scores),
            "labels_are_binary": bool(set(np.unique(labels)) <= {0.0, 1.0})}


if __name__ == "__main__":
    print("\nRESULT " + json.dumps(main()))
