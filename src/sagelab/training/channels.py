"""Bring a job's input channels from the lake to local files.

S3Prefix: every object under the prefix. ManifestFile: a JSON list whose first item is
`{"prefix": "s3://bucket/prefix/"}` and the rest keys relative to it. Objects of the embedded store are
read in place (no copy); Gzip channels are decompressed into the job's work folder.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from sagelab.algorithms.base import Channel, DataError
from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import S3Uri, parse_s3_uri
from sagelab.training.spec import ChannelConfig


def _object_keys(blobs: BlobStore, config: ChannelConfig) -> list[S3Uri]:
    uri = config.uri
    try:
        if config.data_type == "ManifestFile":
            data = b"".join(blobs.read(uri.bucket, uri.key))
            try:
                manifest = json.loads(data)
                prefix = parse_s3_uri(manifest[0]["prefix"], field="manifest prefix")
                return [S3Uri(prefix.bucket, prefix.key + str(rel)) for rel in manifest[1:]]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise DataError(f"Channel {config.name!r}: manifest {uri} is not a valid manifest file "
                                f"([{{\"prefix\": \"s3://...\"}}, \"key\", ...]): {exc}.") from None
        # Like SageMaker's containers, skip folder markers and hidden/marker files such as _SUCCESS.
        return [S3Uri(uri.bucket, info.key) for info in blobs.list(uri.bucket, uri.key)
                if not info.key.endswith("/") and not info.key.rsplit("/", 1)[-1].startswith((".", "_"))]
    except S3Error as exc:
        raise DataError(f"Channel {config.name!r}: cannot read {uri}: {exc.message}") from None


def materialize(blobs: BlobStore, config: ChannelConfig, work_dir: Path, default_content_type: str) -> Channel:
    keys = _object_keys(blobs, config)
    if not keys:
        raise DataError(f"Channel {config.name!r}: no objects found under {config.uri}. Upload the data first "
                        "or correct the S3Uri.")
    target_dir = work_dir / "input" / "data" / config.name
    target_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    relative: list[str] = []
    for index, uri in enumerate(keys):
        relative.append(_relative_key(config, uri))
        try:
            local = blobs.local_path(uri.bucket, uri.key)
        except S3Error as exc:
            raise DataError(f"Channel {config.name!r}: cannot read {uri}: {exc.message}") from None
        name = f"{index:05d}-{Path(uri.key).name}"
        if local is None:
            local = target_dir / name
            with local.open("wb") as f:
                for chunk in blobs.read(uri.bucket, uri.key):
                    f.write(chunk)
        if config.compression == "Gzip":
            plain = target_dir / f"unzipped-{name.removesuffix('.gz')}"
            try:
                with gzip.open(local, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            except OSError as exc:
                raise DataError(f"Channel {config.name!r}: {uri} is not valid gzip data ({exc}).") from None
            local = plain
        files.append(local if local.parent == target_dir else _link(target_dir / name, local))
    return Channel(name=config.name, content_type=config.content_type or default_content_type, files=files,
                   params=dict(config.content_params), keys=relative)


def _relative_key(config: ChannelConfig, uri: S3Uri) -> str:
    """`train/data.csv` for s3://b/prefix/train/data.csv under the S3Prefix s3://b/prefix/; the file name when
    the prefix names the object itself, or for manifest entries."""
    base = config.uri.key
    if config.data_type == "S3Prefix" and uri.key.startswith(base) and uri.key != base:
        return uri.key[len(base):].lstrip("/")
    return uri.key.rsplit("/", 1)[-1]


def _link(link: Path, source: Path) -> Path:
    """A symlink named after the object, so algorithms see file names (the embedded store's are `@data`)."""
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(source)
    return link
