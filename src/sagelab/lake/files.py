"""Lake objects as local files, for engines (DuckDB, pyarrow) that read paths rather than streams."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sagelab.lake.blobs import BlobStore


def local_file(blobs: BlobStore, bucket: str, key: str) -> Path:
    """A local path holding the object's bytes: the object itself in the embedded store, else a cached copy."""
    path = blobs.local_path(bucket, key)
    if path is not None:
        return path
    info = blobs.head(bucket, key)
    digest = hashlib.sha256(f"{bucket}/{key}/{info.etag}".encode()).hexdigest()[:32]
    cached = blobs.staging_dir() / "object-cache" / digest
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        with partial.open("wb") as f:
            for chunk in blobs.read(bucket, key):
                f.write(chunk)
        partial.replace(cached)
    return cached
