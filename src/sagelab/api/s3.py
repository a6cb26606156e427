"""S3 REST face (placeholder)."""

from __future__ import annotations

from sagelab.api.http import Request, Response


class S3Face:
    protocol = "s3"

    def __init__(self, blobs):
        self.blobs = blobs

    def handle(self, request: Request) -> Response:
        from sagelab.errors import UnknownOperation
        raise UnknownOperation("S3 is not implemented yet")
