"""The Kinesis Data Analytics (SQL) face (AWS JSON 1.1, target prefix `KinesisAnalytics_20150814`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import KINESIS_ANALYTICS, Call, OperationTable

if TYPE_CHECKING:
    from sagelab.analytics.service import AnalyticsService
    from sagelab.platform import Platform

op = KINESIS_ANALYTICS.op
APPLICATION = "application/{ApplicationName}"


class KinesisAnalyticsFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def analytics(self) -> AnalyticsService:
        return self.platform.analytics

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    operations = OperationTable("kinesisanalytics", KINESIS_ANALYTICS, (
        op("CreateApplication", lambda face, p, r: face.analytics.create(p, r.region), APPLICATION),
        op("DescribeApplication", lambda face, p, r: face.analytics.describe(p["ApplicationName"]), APPLICATION,
           read_only=True),
        op("ListApplications", lambda face, p, r: face.analytics.list(p), read_only=True),
        op("DeleteApplication", lambda face, p, r: face.analytics.delete(p["ApplicationName"], p["CreateTimestamp"]),
           APPLICATION),
        op("StartApplication", lambda face, p, r: face.analytics.start(
            p["ApplicationName"], p["InputConfigurations"]), APPLICATION),
        op("StopApplication", lambda face, p, r: face.analytics.stop(p["ApplicationName"]), APPLICATION),
    ))
    wire = JsonService("KinesisAnalytics_20150814", operations)
