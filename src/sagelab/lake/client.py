"""Reach the lake from a command-line tool: through a running server's S3 API, or straight into a home's
folder store. Local paths pass through untouched, so every command takes `s3://...` or a path alike.

    lake = open_lake(endpoint_url=None, home=None)     # the default home's embedded lake
    files = lake.fetch("s3://bucket/prefix/", scratch)  # local copies of every object under the prefix
    lake.publish(folder, "s3://bucket/out/")            # every file under folder, at out/<relative path>
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Protocol

from sagelab.errors import S3Error, ValidationError
from sagelab.lake.blobs import open_blob_store
from sagelab.lake.uris import S3Uri, parse_s3_uri


def is_s3(location: str) -> bool:
    return str(location).startswith("s3://")


def _visible(key: str) -> bool:
    """Skip folder markers and hidden or marker files (_SUCCESS), as SageMaker's containers do."""
    return not key.endswith("/") and not key.rsplit("/", 1)[-1].startswith((".", "_"))


class Lake(Protocol):
    def keys(self, uri: S3Uri) -> list[str]: ...
    def download(self, uri: S3Uri, target: Path) -> None: ...
    def upload(self, source: Path, uri: S3Uri) -> None: ...


class FolderLake:
    """The embedded lake of a sagelab home, opened directly (the server need not run)."""

    def __init__(self, blobs: Any):
        self.blobs = blobs

    def keys(self, uri: S3Uri) -> list[str]:
        try:
            return [info.key for info in self.blobs.list(uri.bucket, uri.key)]
        except S3Error as exc:
            raise ValidationError(f"cannot list {uri}: {exc.message}") from None

    def download(self, uri: S3Uri, target: Path) -> None:
        source = self.blobs.local_path(uri.bucket, uri.key)
        if source is not None:
            shutil.copyfile(source, target)
            return
        # Encrypted at rest: only a server holds the keys, so the folder store refuses (and says so).
        try:
            with target.open("wb") as f:
                for chunk in self.blobs.read(uri.bucket, uri.key):
                    f.write(chunk)
        except S3Error as exc:
            target.unlink(missing_ok=True)
            raise ValidationError(f"cannot read {uri}: {exc.message} (pass --endpoint-url)") from None

    def upload(self, source: Path, uri: S3Uri) -> None:
        with source.open("rb") as f:
            self.blobs.put(uri.bucket, uri.key, iter(lambda: f.read(1 << 20), b""))


class ServerLake:
    """A sagelab server (or any S3 endpoint) through boto3."""

    def __init__(self, client: Any):
        self.client = client

    def keys(self, uri: S3Uri) -> list[str]:
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=uri.bucket, Prefix=uri.key):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def download(self, uri: S3Uri, target: Path) -> None:
        self.client.download_file(uri.bucket, uri.key, str(target))

    def upload(self, source: Path, uri: S3Uri) -> None:
        self.client.upload_file(str(source), uri.bucket, uri.key)


def open_lake(*, endpoint_url: str | None = None, home: str | None = None) -> Lake:
    """`endpoint_url`: a server's S3 API (credentials from the usual AWS chain, or from `home`'s credentials
    file when a home is named too). Otherwise the folder store of `home` (default: the settings' home)."""
    from sagelab.settings import load_settings

    if endpoint_url:
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {}
        if home:
            from sagelab.security.credentials import read_credentials_file

            creds = read_credentials_file(Path(home).expanduser() / "credentials")
            if creds is not None:
                kwargs = {"aws_access_key_id": creds.access_key_id,
                          "aws_secret_access_key": creds.secret_access_key}
        client = boto3.client("s3", endpoint_url=endpoint_url, region_name=load_settings({}).region,
                              config=Config(s3={"addressing_style": "path"}), **kwargs)
        return ServerLake(client)
    return FolderLake(open_blob_store(load_settings({"home": home})))


def fetch(lake: Lake, location: str, scratch: Path) -> Path:
    """A local path for `location`: itself when local; else the object it names, or a folder holding every
    object under it as a prefix (at their keys relative to the prefix's last folder)."""
    if not is_s3(location):
        return Path(location)
    uri = parse_s3_uri(location, field="input")
    keys = [k for k in lake.keys(uri) if _visible(k) and k.startswith(uri.key)]
    if not keys:
        raise ValidationError(f"no objects found under {location}.")
    if uri.key in keys:
        keys = [uri.key]
    base = uri.key.rsplit("/", 1)[0] + "/" if "/" in uri.key else ""
    scratch.mkdir(parents=True, exist_ok=True)
    for key in keys:
        target = (scratch / key[len(base):]).resolve()
        if not target.is_relative_to(scratch.resolve()):
            raise ValidationError(f"object key {key!r} would be written outside the download folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        lake.download(S3Uri(uri.bucket, key), target)
    return scratch / keys[0][len(base):] if keys == [uri.key] else scratch


def publish(lake: Lake, folder: Path, location: str) -> list[str]:
    """Every file under `folder` at `location/<relative path>` (or copied there when local)."""
    written = []
    if not is_s3(location):
        target = Path(location)
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            destination = target / path.relative_to(folder)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            written.append(str(destination))
        return written
    uri = parse_s3_uri(location, field="output")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        target = uri.join(*path.relative_to(folder).parts)
        lake.upload(path, target)
        written.append(str(target))
    return written
