"""The CloudWatch face (metrics and alarms): Smithy RPC v2 CBOR, JSON 1.0 and query. Translation only.

The protocol a request speaks is read per request (`api/granite_protocol.py`); `face_for` hands the app a
face whose `protocol` is that one, so that errors come back in the shape the client reads.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sagelab.api.granite_protocol import GraniteService, protocol_of
from sagelab.api.http import Request, Response
from sagelab.api.operations import CLOUDWATCH, Audit, Call, OperationTable
from sagelab.errors import ValidationError
from sagelab.monitoring.metric_data import get_metric_data
from sagelab.monitoring.metric_errors import InvalidNextToken
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.monitoring.alarms import AlarmService
    from sagelab.monitoring.metrics import MetricStore
    from sagelab.platform import Platform

op = CLOUDWATCH.op
ALARM = "alarm:{AlarmName}"
TARGET_PREFIX = "GraniteServiceVersion20100801"


class CloudWatchFace:
    protocol = "cbor"

    def __init__(self, platform: Platform, protocol: str = "cbor"):
        self.platform = platform
        self.protocol = protocol

    def face_for(self, request: Request) -> CloudWatchFace:
        return CloudWatchFace(self.platform, protocol_of(request, TARGET_PREFIX))

    @property
    def metrics(self) -> MetricStore:
        return self.platform.metrics

    @property
    def alarms(self) -> AlarmService:
        return self.platform.alarms

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    # --- handlers -------------------------------------------------------------------------------------
    def put_metric_data(self, p: dict[str, Any], r: Request) -> None:
        self.metrics.put(p.get("Namespace"), p.get("MetricData") or [])

    def list_metrics(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        since = time.time() - 3 * 3600 if p.get("RecentlyActive") == "PT3H" else None
        found = self.metrics.list_metrics(p.get("Namespace"), p.get("MetricName"), p.get("Dimensions") or [], since)
        try:
            chunk, more = page(found, {"NextToken": p.get("NextToken"), "MaxResults": 500}, default_size=500,
                               max_size=500)
        except ValidationError as bad:
            raise InvalidNextToken(bad.message) from None
        return {"Metrics": chunk, **more}

    def put_metric_alarm(self, p: dict[str, Any], r: Request) -> None:
        self.alarms.put(p, r.region)

    operations = OperationTable("cloudwatch", CLOUDWATCH, (
        # CloudTrail records the metric calls as data events (resource type AWS::CloudWatch::Metric).
        op("PutMetricData", put_metric_data, audit=Audit.DATA),
        op("GetMetricStatistics", lambda face, p, r: face.metrics.statistics(p), audit=Audit.DATA, read_only=True),
        op("GetMetricData", lambda face, p, r: get_metric_data(face.metrics, p), audit=Audit.DATA,
           read_only=True),
        op("ListMetrics", list_metrics, audit=Audit.DATA, read_only=True),
        op("PutMetricAlarm", put_metric_alarm, ALARM),
        op("DescribeAlarms", lambda face, p, r: face.alarms.describe(p), read_only=True),
        op("DescribeAlarmsForMetric", lambda face, p, r: face.alarms.describe_for_metric(p), read_only=True),
        op("DescribeAlarmHistory", lambda face, p, r: face.alarms.history(p), ALARM, read_only=True),
        op("SetAlarmState", lambda face, p, r: face.alarms.set_state(
            p["AlarmName"], p["StateValue"], p["StateReason"], p.get("StateReasonData")), ALARM),
        op("DeleteAlarms", lambda face, p, r: face.alarms.delete(p["AlarmNames"])),
        op("EnableAlarmActions", lambda face, p, r: face.alarms.set_actions_enabled(p["AlarmNames"], True)),
        op("DisableAlarmActions", lambda face, p, r: face.alarms.set_actions_enabled(p["AlarmNames"], False)),
        op("TagResource", lambda face, p, r: face.alarms.tag(p["ResourceARN"], p["Tags"]), "{ResourceARN}"),
        op("UntagResource", lambda face, p, r: face.alarms.untag(p["ResourceARN"], p["TagKeys"]), "{ResourceARN}"),
        op("ListTagsForResource", lambda face, p, r: face.alarms.tags(p["ResourceARN"]), "{ResourceARN}",
           read_only=True),
    ), signing_name="monitoring")
    wire = GraniteService(TARGET_PREFIX, operations)
