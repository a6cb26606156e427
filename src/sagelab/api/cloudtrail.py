"""The CloudTrail face (AWS JSON 1.1, target `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101`).

Translation only: the event history is `cloudtrail.history`'s, trails and their delivery `cloudtrail.trails`'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import CLOUDTRAIL, Call, OperationTable

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = CLOUDTRAIL.op
TRAIL = "trail/{Name}"


class CloudTrailFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def trails(self):  # -> TrailService, resolved per call
        return self.platform.trails

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def lookup_events(self, p: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.platform.event_history.lookup(p)

    operations = OperationTable("cloudtrail", CLOUDTRAIL, (
        op("LookupEvents", lookup_events, read_only=True),
        op("CreateTrail", lambda face, p, r: face.trails.create(p, r.region), TRAIL),
        op("GetTrail", lambda face, p, r: {"Trail": face.trails.get(p["Name"])}, TRAIL, read_only=True),
        op("DescribeTrails", lambda face, p, r: {"trailList": face.trails.describe(p.get("trailNameList"))},
           read_only=True),
        op("GetTrailStatus", lambda face, p, r: face.trails.status(p["Name"]), TRAIL, read_only=True),
        op("StartLogging", lambda face, p, r: face.trails.start_logging(p["Name"]), TRAIL),
        op("StopLogging", lambda face, p, r: face.trails.stop_logging(p["Name"]), TRAIL),
        op("DeleteTrail", lambda face, p, r: face.trails.delete(p["Name"]), TRAIL),
        op("PutEventSelectors", lambda face, p, r: face.trails.put_selectors(p["TrailName"], p),
           "trail/{TrailName}"),
        op("GetEventSelectors", lambda face, p, r: face.trails.get_selectors(p["TrailName"]), "trail/{TrailName}",
           read_only=True),
        op("ListPublicKeys", lambda face, p, r: {"PublicKeyList": face.trails.public_keys()}, read_only=True),
    ))
    wire = JsonService("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", operations)
