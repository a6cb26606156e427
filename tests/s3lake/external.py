"""What the external store holds for a sagelab bucket, seen with a boto3 client of the store itself."""

from __future__ import annotations

from sagelab.testing.s3_server import S3Lake


def external_keys(external, lake: S3Lake, bucket: str, key: str = "") -> list[str]:
    """The external objects that hold sagelab's `bucket` (under `key`'s folder when given)."""
    prefix = f"{lake.prefix}/{bucket}/" + (f"{key}/" if key else "")
    return [o["Key"] for page in external.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
