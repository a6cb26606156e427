"""K-Means with `record_set()` and the default protobuf predictor, in the shape of SageMaker's
"Introduction to k-means with MNIST" notebook: cluster handwritten digits into ten groups.

Data: scikit-learn's digits. Runs as is against AWS (with a real role ARN) or a sagelab server
(`eval "$(sagelab env)"` first). The last line printed is `RESULT {...}`, with the agreement between
the clusters and the true digits next to what scikit-learn's own KMeans reaches on the same data.
"""

from __future__ import annotations

import json
import os

import numpy as np
import sagemaker
from sagemaker import KMeans
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    digits = load_digits()
    features = (digits.data / 16.0).astype("float32")

    kmeans = KMeans(role=ROLE, instance_count=1, instance_type="ml.c5.xlarge", k=10,
                    output_path=f"s3://{bucket}/examples/kmeans-digits/output",
                    data_location=f"s3://{bucket}/examples/kmeans-digits/data", sagemaker_session=session)
    kmeans.fit(kmeans.record_set(features), mini_batch_size=200, logs=False)
    print(f"trained {kmeans.latest_training_job.name}")

    predictor = kmeans.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = []
        for batch in np.array_split(features, 6):
            records += predictor.predict(batch)
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    clusters = np.array([r.label["closest_cluster"].float32_tensor.values[0] for r in records]).astype(int)
    distances = np.array([r.label["distance_to_cluster"].float32_tensor.values[0] for r in records])
    reference = SklearnKMeans(n_clusters=10, n_init=10, random_state=0).fit_predict(features)
    agreement = adjusted_rand_score(digits.target, clusters)
    print(f"endpoint: {len(records)} records in {len(set(clusters))} clusters, adjusted Rand index {agreement:.3f} "
          f"(scikit-learn KMeans: {adjusted_rand_score(digits.target, reference):.3f})")
    return {"training_job": kmeans.latest_training_job.name, "rows": len(records), "input_rows": len(features),
            "clusters_used": len(set(clusters)), "cluster_ids_in_range": bool(clusters.min() >= 0 and clusters.max() < 10),
            "distances_non_negative": bool((distances >= 0).all()),
            "adjusted_rand": agreement, "sklearn_adjusted_rand": adjusted_rand_score(digits.target, reference)}


if __name__ == "__main__":
    print("\nRESULT " + json.dumps(main()))
