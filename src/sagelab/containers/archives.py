"""Bring a folder of files from the lake: a `.tar.gz` archive unpacked safely, or every object under a prefix.

Model artifacts (`model.tar.gz`) and user code bundles (`sourcedir.tar.gz`) arrive this way. Archives are
unpacked with tarfile's "data" filter, which refuses absolute paths, `..`, links out of the folder and
device files, so an archive cannot write outside its target.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri


class ArchiveError(Exception):
    """The folder cannot be brought: the message says which object and why."""


def unpack(data: bytes | Path, target: Path, source: str, *, what: str = "archive") -> None:
    """Unpack a tar archive (any compression) into `target`; `source` names it in errors."""
    try:
        source_file = {"name": data} if isinstance(data, Path) else {"fileobj": io.BytesIO(data)}
        with tarfile.open(mode="r:*", **source_file) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"The {what} at {source} is not a valid .tar.gz archive: {exc}.") from exc


def fetch_folder(blobs: BlobStore, url: str, target: Path, *, what: str = "archive") -> Path:
    """`s3://b/k.tar.gz` -> its files in `target`; `s3://b/prefix/` -> every object under it, by relative key."""
    uri = parse_s3_uri(url)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    try:
        if uri.key.endswith("/") or not uri.key:
            for info in blobs.list(uri.bucket, uri.key):
                local = (target / info.key[len(uri.key):]).resolve()
                if not local.is_relative_to(target.resolve()):
                    raise ArchiveError(f"Object s3://{uri.bucket}/{info.key} would be written outside {target}.")
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(b"".join(blobs.read(uri.bucket, info.key)))
            return target
        data = b"".join(blobs.read(uri.bucket, uri.key))
    except S3Error as exc:
        raise ArchiveError(f"Could not read the {what} at {url}: {exc.message}") from exc
    unpack(data, target, url, what=what)
    return target
