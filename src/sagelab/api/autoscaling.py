"""The Application Auto Scaling face (AWS JSON 1.1, target prefix `AnyScaleFrontendService`). Translation only.

It signs as `application-autoscaling`. Its IAM actions are `application-autoscaling:*` on `*`: requests name
a resource by its ResourceId, not by the scalable target's ARN, so they are authorized on any resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import APPLICATION_AUTOSCALING, Call, OperationTable

if TYPE_CHECKING:
    from sagelab.autoscaling.service import ScalingService
    from sagelab.platform import Platform

op = APPLICATION_AUTOSCALING.op


class AutoScalingFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def scaling(self) -> ScalingService:
        return self.platform.scaling

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    operations = OperationTable("application-autoscaling", APPLICATION_AUTOSCALING, (
        op("RegisterScalableTarget", lambda face, p, r: face.scaling.register(p, r.region)),
        op("DescribeScalableTargets", lambda face, p, r: face.scaling.describe_targets(p), read_only=True),
        op("DeregisterScalableTarget", lambda face, p, r: face.scaling.deregister(p)),
        op("PutScalingPolicy", lambda face, p, r: face.scaling.put_policy(p, r.region)),
        op("DescribeScalingPolicies", lambda face, p, r: face.scaling.describe_policies(p), read_only=True),
        op("DeleteScalingPolicy", lambda face, p, r: face.scaling.delete_policy(p)),
        op("DescribeScalingActivities", lambda face, p, r: face.scaling.describe_activities(p), read_only=True),
    ))
    wire = JsonService("AnyScaleFrontendService", operations)
