"""The bytes an S3 upload carries: `aws-chunked` decoding and the integrity checks clients ask for.

SDKs may frame a body as `aws-chunked` (`<hex size>[;chunk-signature=..]\\r\\n<data>\\r\\n ... 0\\r\\n
<trailers>\\r\\n`), with the checksum sent as a trailer rather than a header. Whatever the framing, a
`Content-MD5` or `x-amz-checksum-<algorithm>` value the client sent must match the decoded bytes, or the
request fails with BadDigest. Chunk signatures are stripped, not verified; the request itself is signed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import zlib
from collections.abc import Callable, Mapping

from sagelab.errors import S3Error

_CHECKSUM_PREFIX = "x-amz-checksum-"
ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


def _crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _crt_checksums() -> dict[str, Callable[[bytes], bytes]]:
    """CRC32C and CRC64NVME need awscrt (as botocore does); without it those values go unchecked."""
    try:
        from awscrt import checksums  # type: ignore[import-not-found]
    except ImportError:
        return {}
    return {"crc32c": lambda data: checksums.crc32c(data).to_bytes(4, "big"),
            "crc64nvme": lambda data: checksums.crc64nvme(data).to_bytes(8, "big")}


def _digest_functions() -> dict[str, Callable[[bytes], bytes]]:
    return {"crc32": _crc32, "sha1": lambda d: hashlib.sha1(d).digest(),
            "sha256": lambda d: hashlib.sha256(d).digest(), **_crt_checksums()}


@dataclasses.dataclass(frozen=True)
class Payload:
    data: bytes
    #: x-amz-checksum-* values the client sent (headers or trailers), verified where we can compute them.
    checksums: dict[str, str]


def decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """-> (data, trailers) of an aws-chunked body."""
    data = bytearray()
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            raise _incomplete("a chunk header is not terminated")
        size_field = body[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise _incomplete(f"bad chunk size {size_field[:20]!r}") from None
        pos = line_end + 2
        if size == 0:
            break
        if body[pos + size:pos + size + 2] != b"\r\n":
            raise _incomplete("a chunk is shorter than its declared size")
        data += body[pos:pos + size]
        pos += size + 2
    trailers = {}
    for line in body[pos:].split(b"\r\n"):
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            trailers[name.strip().lower()] = value.strip()
    return bytes(data), trailers


def _incomplete(why: str) -> S3Error:
    return S3Error("IncompleteBody", f"The request body is not valid aws-chunked encoding: {why}.", 400)


def _bad_digest(what: str) -> S3Error:
    return S3Error("BadDigest", f"The {what} you specified did not match the calculated checksum.", 400)


def read_payload(headers: Mapping[str, str], body: bytes) -> Payload:
    """Decode the request body and verify every checksum the client sent for it."""
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",") if e.strip()]
    trailers: dict[str, str] = {}
    data = body
    if "aws-chunked" in encodings or headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
        data, trailers = decode_aws_chunked(body)
        declared = headers.get("x-amz-decoded-content-length")
        if declared is not None and declared.strip() != str(len(data)):
            raise S3Error("IncompleteBody", f"x-amz-decoded-content-length is {declared} but the body decoded "
                          f"to {len(data)} bytes.", 400)
    md5 = headers.get("content-md5")
    if md5 is not None:
        try:
            expected = base64.b64decode(md5, validate=True)
        except binascii.Error:
            raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400) from None
        if not hmac.compare_digest(expected, hashlib.md5(data, usedforsecurity=False).digest()):
            raise _bad_digest("Content-MD5")
    sent = {name: value for name, value in {**headers, **trailers}.items()
            if name.startswith(_CHECKSUM_PREFIX) and name.removeprefix(_CHECKSUM_PREFIX) in ALGORITHMS}
    functions = _digest_functions()
    for name, value in sent.items():
        compute = functions.get(name.removeprefix(_CHECKSUM_PREFIX))
        if compute is not None and not hmac.compare_digest(base64.b64encode(compute(data)).decode(), value):
            raise _bad_digest(name.removeprefix(_CHECKSUM_PREFIX).upper() + " checksum")
    return Payload(data, sent)

