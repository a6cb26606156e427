"""Lake objects as local files, for engines (DuckDB, pyarrow) that read paths rather than streams.

An object encrypted at rest has no plain file of its own. Given a `scratch` folder (one query's, removed
when it ends) its plain copy goes there and lives no longer than the work that needs it; the shared cache
below only ever holds copies of objects the lake itself stores in plain.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore


def local_file(blobs: BlobStore, bucket: str, key: str, scratch: Path | None = None) -> Path:
    """A local path holding the object's bytes: the object itself in the embedded store, else a copy (in
    `scratch` for an object encrypted at rest, which is refused without one)."""
    path = blobs.local_path(bucket, key)
    if path is not None:
        return path
    info = blobs.head(bucket, key)
    digest = hashlib.sha256(f"{bucket}/{key}/{info.etag}".encode()).hexdigest()[:32]
    if info.encryption and scratch is None:
        raise S3Error("InvalidRequest", f"s3://{bucket}/{key} is encrypted at rest and this reader keeps no "
                      "scratch folder for its plain copy.", 400)
    cached = (scratch / "decrypted" if info.encryption else blobs.staging_dir() / "object-cache") / digest
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        with partial.open("wb") as f:
            for chunk in blobs.read(bucket, key):
                f.write(chunk)
        partial.replace(cached)
    return cached
