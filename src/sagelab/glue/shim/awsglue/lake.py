"""The lake as a Spark job sees it: s3:// objects fetched into a local folder, and written back from one.

Everything goes through the S3 face with boto3 (AWS_ENDPOINT_URL is this sagelab), so the job's role, bucket
policies and encryption at rest apply to a Spark job as to any other client. A read copies the objects
under the run's staging folder with their keys as paths, so Spark sees `key=value/` folders as partitions;
a write lets Spark write a local folder and uploads its data files. Keys Spark and Hadoop treat as hidden
(a name starting with `_` or `.`, such as `_SUCCESS` and `.crc` files) are neither read nor uploaded.
"""

from __future__ import annotations

import itertools
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_counter = itertools.count()


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"Expected an s3://bucket/key path, got {uri!r}.")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _hidden(relative: str) -> bool:
    return relative.endswith("/") or any(part.startswith(("_", ".")) for part in relative.split("/") if part)


class Lake:
    def __init__(self, staging: Path | None = None, client: Any = None):
        self.staging = Path(staging or os.environ.get("SAGELAB_GLUE_STAGING") or "glue-staging").resolve()
        self._client = client

    @property
    def s3(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def list(self, uri: str) -> list[tuple[float, str]]:
        """(LastModified, s3:// URI) of the data objects under `uri` (a prefix, or one object's key)."""
        bucket, prefix = split_uri(uri)
        # A path names a folder (or one object), never a key prefix: s3://b/sales is not s3://b/sales2/.
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key == prefix or (key.startswith(folder) and not _hidden(key[len(folder):])):
                    found.append((item["LastModified"].timestamp(), f"s3://{bucket}/{key}"))
        return sorted(found)

    def fetch(self, items: list[str | tuple[str, str]]) -> tuple[Path, list[Path]]:
        """Copy objects into a fresh folder: each at the relative path given with it, else at
        `<bucket>/<key>`. The folder, and the files' paths in the order asked."""
        folder = self.staging / f"read-{next(_counter)}"

        def one(item: str | tuple[str, str]) -> Path:
            uri, relative = (item, item[5:]) if isinstance(item, str) else item
            bucket, key = split_uri(uri)
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, key, str(path))
            return path

        with ThreadPoolExecutor(max_workers=8) as pool:
            return folder, list(pool.map(one, items))

    def new_output_folder(self) -> Path:
        return self.staging / f"write-{next(_counter)}"

    def upload(self, folder: Path, uri: str) -> list[str]:
        """Put every data file Spark wrote under `folder` at `uri` + its relative path; the keys written."""
        bucket, prefix = split_uri(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        files = sorted(p for p in folder.rglob("*") if p.is_file()
                       and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts))

        def one(path: Path) -> str:
            key = prefix + path.relative_to(folder).as_posix()
            self.s3.upload_file(str(path), bucket, key)
            return key

        with ThreadPoolExecutor(max_workers=8) as pool:
            keys = list(pool.map(one, files))
        shutil.rmtree(folder, ignore_errors=True)
        return keys
