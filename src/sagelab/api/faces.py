"""The face table: which AWS service, named by the SigV4 credential scope, is answered by what."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagelab.api.app import Face, SagelabApp
from sagelab.security.sigv4 import SigV4Verifier

if TYPE_CHECKING:
    from sagelab.platform import Platform


def build_faces(platform: Platform) -> dict[str, Face]:
    from sagelab.api.athena import AthenaFace
    from sagelab.api.glue import GlueFace
    from sagelab.api.logs import LogsFace
    from sagelab.api.s3 import S3Face
    from sagelab.api.sagemaker import SageMakerFace
    from sagelab.api.sts import StsFace

    return {
        "sagemaker": SageMakerFace(platform),
        "s3": S3Face(platform.blobs),
        "glue": GlueFace(platform),
        "athena": AthenaFace(platform),
        "sts": StsFace(platform),
        "logs": LogsFace(platform),
    }


def build_app(platform: Platform) -> SagelabApp:
    settings = platform.settings
    verifier = (SigV4Verifier(platform.lookup_secret, settings.clock_skew_seconds) if settings.auth else None)
    return SagelabApp(build_faces(platform), verifier, default_region=settings.region,
                      account_id=platform.account_id, on_shutdown=platform.close)
