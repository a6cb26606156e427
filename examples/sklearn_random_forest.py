"""scikit-learn script mode, in the shape of SageMaker's "Random Forest with scikit-learn" notebooks.

The training script is the user's own `train.py` (argparse hyperparameters, SM_* paths, joblib model); the
same file defines `model_fn` for serving, as the SDK samples do. Fit it with the SKLearn estimator, deploy
it, score the held-out rows, and score them again with a batch transform. Nothing here is specific to
sagelab: it runs as is against AWS (with a real role ARN) or against a sagelab server:

    sagelab server --home ~/.sagelab &
    eval "$(sagelab env --home ~/.sagelab)"
    python examples/sklearn_random_forest.py

The last line printed is `RESULT {...}` with the quality figures, for scripts that run the example.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap

import numpy as np
import pandas as pd
import sagemaker
from sagemaker.inputs import TrainingInput
from sagemaker.sklearn import SKLearn
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/sklearn-random-forest"

TRAIN_SCRIPT = textwrap.dedent('''
    import argparse
    import os

    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier


    def model_fn(model_dir):
        """Deserialise the model for the scikit-learn serving container."""
        return joblib.load(os.path.join(model_dir, "model.joblib"))


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--n-estimators", type=int, default=10)
        parser.add_argument("--min-samples-leaf", type=int, default=3)
        parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
        parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
        parser.add_argument("--test", type=str, default=os.environ.get("SM_CHANNEL_TEST"))
        parser.add_argument("--target", type=str, default="target")
        args, _ = parser.parse_known_args()

        train = pd.read_csv(os.path.join(args.train, "train.csv"))
        test = pd.read_csv(os.path.join(args.test, "test.csv"))
        features = [c for c in train.columns if c != args.target]
        model = RandomForestClassifier(n_estimators=args.n_estimators, min_samples_leaf=args.min_samples_leaf,
                                       n_jobs=-1, random_state=0)
        model.fit(train[features], train[args.target])
        print(f"test accuracy: {model.score(test[features], test[args.target]):.4f};")
        joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
''')


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()

    # --- data: wine, 80 % train, 20 % test, written with a header as the samples do --------------------------
    data = load_wine(as_frame=True).frame
    train, test = train_test_split(data, test_size=0.2, stratify=data["target"], random_state=42)
    with tempfile.TemporaryDirectory() as tmp:
        train.to_csv(f"{tmp}/train.csv", index=False)
        test.to_csv(f"{tmp}/test.csv", index=False)
        train_uri = session.upload_data(f"{tmp}/train.csv", bucket, f"{PREFIX}/train")
        test_uri = session.upload_data(f"{tmp}/test.csv", bucket, f"{PREFIX}/test")
        with open(f"{tmp}/train.py", "w") as f:
            f.write(TRAIN_SCRIPT)

        # --- train the user's script ----------------------------------------------------------------------
        estimator = SKLearn(entry_point="train.py", source_dir=tmp, role=ROLE, instance_count=1,
                            instance_type="ml.c5.xlarge", framework_version="1.2-1", py_version="py3",
                            base_job_name="rf-scikit", sagemaker_session=session,
                            output_path=f"s3://{bucket}/{PREFIX}/output",
                            hyperparameters={"n-estimators": 100, "min-samples-leaf": 3},
                            metric_definitions=[{"Name": "test:accuracy", "Regex": "test accuracy: ([0-9.]+);"}])
        estimator.fit({"train": TrainingInput(os.path.dirname(train_uri) + "/"),
                       "test": TrainingInput(os.path.dirname(test_uri) + "/")})
    job = estimator.latest_training_job.describe()
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    print(f"test:accuracy reported by the training job: {metrics['test:accuracy']:.4f}")

    # --- deploy: the scikit-learn container's defaults (NPY in and out) around the script's model_fn -----------
    features = test.drop(columns="target").to_numpy()
    predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        endpoint_labels = predictor.predict(features)
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    endpoint_accuracy = float(np.mean(endpoint_labels == test["target"].to_numpy()))
    print(f"endpoint accuracy on {len(features)} test rows: {endpoint_accuracy:.4f}")

    # --- batch transform over a header-less CSV of the same rows -----------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(features).to_csv(f"{tmp}/batch.csv", header=False, index=False)
        batch_uri = session.upload_data(f"{tmp}/batch.csv", bucket, f"{PREFIX}/batch")
    transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large", accept="text/csv",
                                        output_path=f"s3://{bucket}/{PREFIX}/batch-output", strategy="MultiRecord",
                                        assemble_with="Line")
    transformer.transform(batch_uri, content_type="text/csv", split_type="Line")
    transformer.wait()
    body = session.read_s3_file(bucket, f"{PREFIX}/batch-output/batch.csv.out")
    batch_labels = np.array([float(v) for v in body.split()])
    return {"test_rows": len(features), "job_accuracy": metrics["test:accuracy"],
            "endpoint_accuracy": endpoint_accuracy, "batch_matches_endpoint": bool(
                np.array_equal(batch_labels, endpoint_labels))}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main()))
