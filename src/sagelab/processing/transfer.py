"""Copy processing inputs from the lake into the job's folders, and upload its outputs afterwards.

S3Prefix: every object under the prefix, at its key relative to the prefix (an S3Uri naming one object gives
that file under its own name). ManifestFile: a JSON list whose first item is `{"prefix": "s3://..."}` and
the rest keys relative to it. Inputs are copied, never linked, so a script that edits its input in place
cannot change the lake. Outputs: every file under the output folder, at `<S3Uri>/<relative path>`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sagelab.algorithms.base import DataError
from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.encryption import under_kms_key
from sagelab.lake.uris import S3Uri, parse_s3_uri
from sagelab.processing.spec import ProcessingInput, ProcessingOutput

_CHUNK = 1 << 20


def _manifest_objects(blobs: BlobStore, item: ProcessingInput) -> list[tuple[S3Uri, str]]:
    data = b"".join(blobs.read(item.uri.bucket, item.uri.key))
    try:
        manifest = json.loads(data)
        prefix = parse_s3_uri(manifest[0]["prefix"], field="manifest prefix")
        return [(S3Uri(prefix.bucket, prefix.key + str(rel)), str(rel)) for rel in manifest[1:]]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise DataError(f"Input {item.name!r}: {item.uri} is not a valid manifest file "
                        f"([{{\"prefix\": \"s3://...\"}}, \"key\", ...]): {exc}.") from None


def _prefix_objects(blobs: BlobStore, item: ProcessingInput) -> list[tuple[S3Uri, str]]:
    bucket, prefix = item.uri
    found = []
    for info in blobs.list(bucket, prefix):
        if info.key.endswith("/"):
            continue  # a folder marker
        relative = info.key[len(prefix):].lstrip("/") or info.key.rsplit("/", 1)[-1]
        found.append((S3Uri(bucket, info.key), relative))
    return found


def download_input(blobs: BlobStore, item: ProcessingInput, target: Path) -> int:
    """Copy the input's objects under `target`; returns how many were copied."""
    try:
        objects = (_manifest_objects(blobs, item) if item.data_type == "ManifestFile"
                   else _prefix_objects(blobs, item))
        if not objects:
            raise DataError(f"Input {item.name!r}: no S3 objects found under {item.uri}. Upload the data first "
                            "or correct the S3Uri.")
        target.mkdir(parents=True, exist_ok=True)
        for uri, relative in objects:
            local = (target / relative).resolve()
            if not local.is_relative_to(target.resolve()):
                raise DataError(f"Input {item.name!r}: object {uri} would be written outside {item.local_path}.")
            local.parent.mkdir(parents=True, exist_ok=True)
            source = blobs.local_path(uri.bucket, uri.key)
            if source is not None:
                shutil.copyfile(source, local)
            else:
                with local.open("wb") as f:
                    for chunk in blobs.read(uri.bucket, uri.key):
                        f.write(chunk)
        return len(objects)
    except S3Error as exc:
        raise DataError(f"Input {item.name!r}: cannot read {item.uri}: {exc.message}") from None


def _chunks(path: Path):
    with path.open("rb") as f:
        yield from iter(lambda: f.read(_CHUNK), b"")


def upload_output(blobs: BlobStore, item: ProcessingOutput, folder: Path) -> list[str]:
    """Upload every file under `folder`; returns the S3 URIs written."""
    written = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        target = item.uri.join(*path.relative_to(folder).parts)
        try:
            blobs.put(target.bucket, target.key, _chunks(path), encryption=under_kms_key(item.kms_key_id))
        except S3Error as exc:
            raise DataError(f"Output {item.name!r}: cannot write {target}: {exc.message}") from None
        written.append(str(target))
    return written
