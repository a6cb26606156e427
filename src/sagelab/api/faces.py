"""The face table: which AWS service, named by the SigV4 credential scope, is answered by what.

`build_faces` makes the faces for a platform; `operation_tables` reads what they answer from the face
classes alone, so it builds no Platform, no service, and touches no disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.app import Face, SagelabApp
from sagelab.api.enforcement import IamEnforcer
from sagelab.security.sigv4 import SigV4Verifier

if TYPE_CHECKING:
    from sagelab.api.operations import OperationTable, ServiceNamespace
    from sagelab.platform import Platform


def face_classes() -> dict[str, type]:
    """Signing name -> the face class that answers it."""
    from sagelab.api.athena import AthenaFace
    from sagelab.api.autoscaling import AutoScalingFace
    from sagelab.api.cloudtrail import CloudTrailFace
    from sagelab.api.cloudwatch import CloudWatchFace
    from sagelab.api.dms import DmsFace
    from sagelab.api.firehose import FirehoseFace
    from sagelab.api.glue import GlueFace
    from sagelab.api.iam import IamFace
    from sagelab.api.kinesis import KinesisFace
    from sagelab.api.kinesisanalytics import KinesisAnalyticsFace
    from sagelab.api.kms import KmsFace
    from sagelab.api.lakeformation import LakeFormationFace
    from sagelab.api.logs import LogsFace
    from sagelab.api.s3 import S3Face
    from sagelab.api.sagemaker import SageMakerFace
    from sagelab.api.sts import StsFace

    return {"sagemaker": SageMakerFace, "s3": S3Face, "glue": GlueFace, "athena": AthenaFace, "sts": StsFace,
            "logs": LogsFace, "kinesis": KinesisFace,
            "firehose": FirehoseFace, "kinesisanalytics": KinesisAnalyticsFace, "iam": IamFace, "kms": KmsFace,
            "cloudtrail": CloudTrailFace, "monitoring": CloudWatchFace,
            "lakeformation": LakeFormationFace, "dms": DmsFace,
            "application-autoscaling": AutoScalingFace}


def operation_tables() -> tuple[OperationTable[Any], ...]:
    """Every operation table sagelab answers from, one per face."""
    from sagelab.api.runtime import RuntimeFace

    # sagemaker-runtime signs as "sagemaker": the SageMaker face carries the runtime face.
    return (*(cls.operations for cls in face_classes().values()), RuntimeFace.operations)


def service_namespaces() -> dict[str, ServiceNamespace]:
    """IAM action prefix -> how that service spells its ARNs, for every service a table answers."""
    return {table.namespace.name: table.namespace for table in operation_tables()}


def build_faces(platform: Platform) -> dict[str, Face]:
    return {name: cls(platform) for name, cls in face_classes().items()}


def build_app(platform: Platform) -> SagelabApp:
    settings = platform.settings
    verifier = (SigV4Verifier(platform.lookup_secret, settings.clock_skew_seconds) if settings.auth else None)
    from sagelab.api.audit import cloudtrail_observer

    # IAM holds every signed caller to its policies; with auth off there is no caller to hold.
    guards = [IamEnforcer(platform, service_namespaces())] if settings.auth else []
    return SagelabApp(build_faces(platform), verifier, default_region=settings.region,
                      account_id=platform.account_id, on_shutdown=platform.close, guards=guards,
                      observers=[cloudtrail_observer(platform.recorder.record)])
