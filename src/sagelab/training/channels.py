"""Bring a job's input channels from the lake to local files.

S3Prefix: every object under the prefix. ManifestFile: a JSON list whose first item is
`{"prefix": "s3://bucket/prefix/"}` and the rest keys relative to it (what the SageMaker SDK's `record_set`
writes). Objects of the embedded store are read in place (no copy); Gzip channels are decompressed into the
job's work folder.

AugmentedManifestFile: a JSON Lines manifest; for each line, each attribute named in AttributeNames is fed in
that order, as SageMaker streams it: an attribute whose name ends in "-ref" is an S3 URI whose object's bytes
are fed, any other attribute is fed as its text (a string as is, anything else as JSON). With
RecordWrapperType RecordIO each item is one recordIO record; with None the items are simply concatenated.
The algorithm sees the whole stream as one file, as it would read its Pipe.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from sagelab.algorithms.base import Channel, DataError
from sagelab.algorithms.first_party.recordio import frame_records
from sagelab.errors import S3Error, ValidationError
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
    if config.data_type == "AugmentedManifestFile":
        return _augmented_manifest(blobs, config, work_dir, default_content_type)
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


def _read_object(blobs: BlobStore, config: ChannelConfig, uri: S3Uri) -> bytes:
    try:
        data = b"".join(blobs.read(uri.bucket, uri.key))
    except S3Error as exc:
        raise DataError(f"Channel {config.name!r}: cannot read {uri}: {exc.message}") from None
    if config.compression == "Gzip":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise DataError(f"Channel {config.name!r}: {uri} is not valid gzip data ({exc}).") from None
    return data


def _augmented_manifest(blobs: BlobStore, config: ChannelConfig, work_dir: Path,
                        default_content_type: str) -> Channel:
    manifest_uri = config.uri
    try:
        text = b"".join(blobs.read(manifest_uri.bucket, manifest_uri.key)).decode("utf-8")
    except S3Error as exc:
        raise DataError(f"Channel {config.name!r}: cannot read the augmented manifest {manifest_uri}: "
                        f"{exc.message}") from None
    except UnicodeDecodeError:
        raise DataError(f"Channel {config.name!r}: the augmented manifest {manifest_uri} is not UTF-8 JSON "
                        "Lines.") from None
    items: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"Channel {config.name!r}: augmented manifest {manifest_uri}, line {number}"
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{where} is not valid JSON: {exc}.") from None
        if not isinstance(entry, dict):
            raise DataError(f"{where} must be a JSON object, one per line.")
        for attribute in config.attribute_names:
            if attribute not in entry:
                raise DataError(f"{where} has no attribute {attribute!r} (AttributeNames: "
                                f"{', '.join(config.attribute_names)}).")
            value = entry[attribute]
            if attribute.endswith("-ref"):
                if not isinstance(value, str):
                    raise DataError(f"{where}: attribute {attribute!r} must be an S3 URI string, got {value!r}.")
                try:
                    uri = parse_s3_uri(value, field=f"{attribute} on line {number}")
                except ValidationError as exc:
                    raise DataError(f"{where}: {exc.message}") from None
                items.append(_read_object(blobs, config, uri))
            else:
                items.append((value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))
                             .encode("utf-8"))
    if not items:
        raise DataError(f"Channel {config.name!r}: the augmented manifest {manifest_uri} lists no records.")
    target_dir = work_dir / "input" / "data" / config.name
    target_dir.mkdir(parents=True, exist_ok=True)
    stream = target_dir / f"{config.name}-augmented-manifest"
    stream.write_bytes(frame_records(items) if config.record_wrapper == "RecordIO" else b"".join(items))
    return Channel(name=config.name, content_type=config.content_type or default_content_type, files=[stream],
                   params=dict(config.content_params))
