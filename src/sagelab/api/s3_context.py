"""What the S3 face's handlers kept in modules of their own (versioning, lifecycle) see of a call.

`api.s3.S3Face` and `api.s3.S3Call` satisfy these; naming them here keeps those modules from importing
the face that imports them.
"""

from __future__ import annotations

from typing import Protocol

from sagelab.api.http import Request
from sagelab.lake.blobs import BlobStore


class LakeFace(Protocol):
    @property
    def blobs(self) -> BlobStore: ...


class BucketCall(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def query(self) -> dict[str, str]: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def request(self) -> Request: ...
