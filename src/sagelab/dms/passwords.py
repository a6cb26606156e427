"""Endpoint passwords, sealed at rest under sagelab's own `dms` service key (as SSE-S3 seals with `s3`'s).

The metadata store then holds no source password in plain; the endpoint's ARN is the encryption context,
so a sealed password copied onto another endpoint does not open.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagelab.kms.service import KmsService


class EndpointPasswords:
    def __init__(self, kms: Callable[[], KmsService]):
        self._kms = kms  # built on first use: an endpoint without a password needs no key

    def seal(self, endpoint_arn: str, password: str) -> str:
        blob = self._kms().seal_with_service_key("dms", password.encode(), {"aws:dms:endpoint": endpoint_arn})
        return base64.b64encode(blob).decode()

    def open(self, endpoint_arn: str, sealed: str) -> str:
        return self._kms().open_with_service_key("dms", base64.b64decode(sealed),
                                                 {"aws:dms:endpoint": endpoint_arn}).decode()
