"""`sagelab demo`: the whole pipeline on the embedded default, driven only through boto3.

Starts a server on a free port, uploads a messy export of scikit-learn's breast-cancer data through the S3
API, catalogs it with a Glue crawler, queries it with Athena, streams click events through Kinesis and
Firehose into the lake and counts them with a crawler and Athena, profiles it, cleans and splits it with a
feature-processing recipe (processing jobs), trains
XGBoost and Linear Learner through the SageMaker API and prints their validation metrics, tunes XGBoost
(Bayesian), evaluates the best model on the test split, registers and approves it in the model registry,
deploys the approved package, and scores the test split through the endpoint and again with a batch
transform job.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sagelab.demo import data
from sagelab.demo.common import BUCKET, LINEAR_LEARNER_IMAGE, XGBOOST_IMAGE, write_csv
from sagelab.demo.models import deploy_and_score, evaluate, register_and_approve
from sagelab.demo.streaming import stream_to_lake
from sagelab.demo.training import train_both, tune_xgboost
from sagelab.embedded import ServerProcess

__all__ = ["LINEAR_LEARNER_IMAGE", "XGBOOST_IMAGE", "run_demo", "split_dataset", "write_csv"]


def split_dataset(seed: int = 7) -> dict[str, np.ndarray]:
    """Breast-cancer data as SageMaker expects it: label first, stratified 80/10/10."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    features, labels = load_breast_cancer(return_X_y=True)
    data = np.column_stack([labels, features])
    train, rest = train_test_split(data, test_size=0.2, stratify=labels, random_state=seed)
    validation, test = train_test_split(rest, test_size=0.5, stratify=rest[:, 0], random_state=seed)
    return {"train": train, "validation": validation, "test": test}


def run_demo(home: str | None = None, out=sys.stdout) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sagelab-demo-"))
    server_home = Path(home) if home else workdir / "home"
    out.write(f"Starting a sagelab server (home {server_home}) ...\n")
    with ServerProcess(server_home) as server:
        out.write(f"  listening on {server.url}; credentials in {server_home / 'credentials'}\n")
        s3, sm = server.client("s3"), server.client("sagemaker")

        if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=BUCKET)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        raw = data.upload_raw(s3, out)
        if not data.catalog_and_query(server.client("glue"), server.client("athena"), f"demo-crawler-{stamp}",
                                      out):
            return 1
        if not stream_to_lake(server.client("kinesis"), server.client("firehose"), s3, server.client("glue"),
                              server.client("athena"), stamp, out):
            return 1
        if not data.profile(sm, s3, f"demo-profile-{stamp}", raw, out):
            return 1
        data_prefix = data.prepare(sm, s3, f"demo-prepare-{stamp}", raw, out)
        if data_prefix is None:
            return 1
        test_rows = data.read_test_rows(s3, data_prefix)

        results = train_both(sm, stamp, data_prefix, out)
        if results is None:
            return 1
        best = tune_xgboost(sm, f"demo-tune-{stamp[4:]}", data_prefix, out)
        if best is None:
            return 1
        artifact = best["ModelArtifacts"]["S3ModelArtifacts"]
        evaluation = evaluate(sm, s3, f"demo-evaluate-{stamp}", artifact, f"{data_prefix}/test/", out)
        if evaluation is None:
            return 1
        package = register_and_approve(sm, f"demo-models-{stamp}", artifact, evaluation, out)
        return deploy_and_score(server, f"demo-xgb-{stamp}", package, test_rows, out)
