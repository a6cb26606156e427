"""The objects a transform job reads, where each one's output goes, and their bytes as a stream.

S3Prefix: every object whose key starts with the prefix (folder markers skipped). ManifestFile: a JSON list
whose first item is `{"prefix": "s3://bucket/prefix/"}` and the rest keys relative to it. As SageMaker does,
each input object gets exactly one output object, `<S3OutputPath>/<relative key>.out`, where the relative key
is the key after the prefix's folder (so `s3://b/in/` and `s3://b/in/data.csv` both map `in/data.csv` to
`data.csv.out`) or, for a manifest, the key as the manifest lists it.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from sagelab.errors import S3Error, ValidationError
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import S3Uri, parse_s3_uri
from sagelab.transform.spec import TransformInput

_READ_SIZE = 4 * 1024 * 1024


class InputError(Exception):
    """The input cannot be listed or read; the message becomes the job's FailureReason."""


@dataclasses.dataclass(frozen=True)
class InputObject:
    uri: S3Uri
    #: The key relative to the input prefix's folder: it names the output object.
    relative_key: str

    def output_uri(self, output_path: S3Uri) -> S3Uri:
        return output_path.join(self.relative_key + ".out")


def list_input_objects(blobs: BlobStore, transform_input: TransformInput) -> list[InputObject]:
    uri = transform_input.uri
    try:
        if transform_input.data_type == "ManifestFile":
            objects = _manifest_objects(blobs, uri)
        else:
            folder = uri.key[:uri.key.rfind("/") + 1]
            objects = [InputObject(S3Uri(uri.bucket, info.key), info.key[len(folder):])
                       for info in blobs.list(uri.bucket, uri.key) if not info.key.endswith("/")]
    except S3Error as exc:
        raise InputError(f"cannot list the input {uri}: {exc.message}") from None
    if not objects:
        raise InputError(f"no input objects found under {uri}. Upload the data first or correct "
                         "TransformInput.DataSource.S3DataSource.S3Uri.")
    return objects


def _manifest_objects(blobs: BlobStore, uri: S3Uri) -> list[InputObject]:
    data = b"".join(blobs.read(uri.bucket, uri.key))
    try:
        manifest = json.loads(data)
        prefix = parse_s3_uri(manifest[0]["prefix"], field="manifest prefix")
        relative = [str(item) for item in manifest[1:]]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"the manifest {uri} is not a valid manifest file ([{{\"prefix\": \"s3://...\"}}, "
                         f"\"key\", ...]): {exc}.") from None
    except ValidationError as exc:
        raise InputError(f"the manifest {uri} has an invalid prefix: {exc.message}") from None
    return [InputObject(S3Uri(prefix.bucket, prefix.key + rel), rel) for rel in relative]


def read_object(blobs: BlobStore, obj: InputObject, compression: str, *,
                piece_size: int | None = None) -> Iterator[bytes]:
    """The object's bytes in pieces (of `piece_size` bytes where the store allows), decompressed when the
    input is Gzip."""
    try:
        local = blobs.local_path(obj.uri.bucket, obj.uri.key)
        pieces = (_read_file(local, piece_size or _READ_SIZE) if local is not None
                  else blobs.read(obj.uri.bucket, obj.uri.key))
        if compression == "Gzip":
            pieces = _gunzip(pieces, obj.uri)
        yield from pieces
    except S3Error as exc:
        raise InputError(f"cannot read the input {obj.uri}: {exc.message}") from None


def _read_file(path: Path, size: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        while piece := f.read(size):
            yield piece


def _gunzip(pieces: Iterator[bytes], uri: S3Uri) -> Iterator[bytes]:
    """Gzip members one after another, as `gzip` writes and `cat a.gz b.gz` makes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    inside_member = False
    try:
        for piece in pieces:
            while piece:
                inside_member = True
                out = inflater.decompress(piece)
                if out:
                    yield out
                if inflater.eof:
                    piece = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    inside_member = False
                else:
                    piece = b""
    except zlib.error as exc:
        raise InputError(f"the input {uri} is not valid gzip data ({exc}); CompressionType is Gzip.") from None
    if inside_member:
        raise InputError(f"the input {uri} ends in the middle of a gzip stream (truncated?); CompressionType "
                         "is Gzip.")
