"""PCA with `record_set()` and the default protobuf predictor, in the shape of SageMaker's
"Introduction to PCA with MNIST" notebook: project handwritten digits onto a few principal components.

Data: scikit-learn's digits. Runs as is against AWS (with a real role ARN) or a sagelab server
(`eval "$(sagelab env)"` first). The last line printed is `RESULT {...}`, with the share of the data's
variance the projections keep next to what scikit-learn's PCA keeps with as many components.
"""

from __future__ import annotations

import json
import os

import numpy as np
import sagemaker
from sagemaker import PCA
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SklearnPCA

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
COMPONENTS = 8


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    features = (load_digits().data / 16.0).astype("float32")

    pca = PCA(role=ROLE, instance_count=1, instance_type="ml.c5.xlarge", num_components=COMPONENTS,
              subtract_mean=True, algorithm_mode="regular",
              output_path=f"s3://{bucket}/examples/pca-digits/output",
              data_location=f"s3://{bucket}/examples/pca-digits/data", sagemaker_session=session)
    pca.fit(pca.record_set(features), mini_batch_size=300, logs=False)
    print(f"trained {pca.latest_training_job.name}")

    predictor = pca.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = []
        for batch in np.array_split(features, 4):
            records += predictor.predict(batch)
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    projections = np.array([r.label["projection"].float32_tensor.values for r in records])
    centered = features - features.mean(axis=0)
    total = centered.var(axis=0).sum()
    kept = projections.var(axis=0).sum() / total
    reference = SklearnPCA(n_components=COMPONENTS).fit(features)
    # The components must be orthonormal for "variance kept" to mean anything: check by reconstruction.
    coefficients, *_ = np.linalg.lstsq(projections - projections.mean(axis=0), centered, rcond=None)
    reconstructed = 1 - ((centered - (projections - projections.mean(axis=0)) @ coefficients) ** 2).sum() / (
        centered ** 2).sum()
    print(f"endpoint: {len(records)} projections of width {projections.shape[1]}, variance kept {kept:.3f} "
          f"(scikit-learn: {reference.explained_variance_ratio_.sum():.3f})")
    return {"training_job": pca.latest_training_job.name, "rows": len(records), "input_rows": len(features),
            "width": int(projections.shape[1]), "variance_kept": float(kept),
            "reconstruction_r2": float(reconstructed),
            "sklearn_variance_kept": float(reference.explained_variance_ratio_.sum())}


if __name__ == "__main__":
    print("\nRESULT " + json.dumps(main()))
