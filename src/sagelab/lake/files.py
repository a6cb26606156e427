"""Lake objects as local files, for engines (DuckDB, pyarrow) that read paths rather than streams.

Where the store has no plain file for an object (one encrypted at rest, or any object of the external S3
store) a copy is made, at the object's key below a folder named by its bucket, key and ETag. An encrypted
object's copy goes in the `scratch` folder given (one query's, removed when it ends) and lives no longer
than the work that needs it; the shared cache only ever holds copies of objects stored in plain.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.key_paths import encode_segment


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
    # Below its digest the copy keeps the key's path, as the folder store's own files do: readers take
    # meaning from it (DuckDB reads a table's partition values from its `year=2024/` segments).
    folder = (scratch / "decrypted" if info.encryption else blobs.staging_dir() / "object-cache") / digest
    cached = folder.joinpath(*(encode_segment(s) for s in key.split("/")))
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.parent / f"{cached.name}.part"
        with partial.open("wb") as f:
            for chunk in blobs.read(bucket, key):
                f.write(chunk)
        partial.replace(cached)
    return cached
