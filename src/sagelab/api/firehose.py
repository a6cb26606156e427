"""The Firehose face (AWS JSON 1.1, target prefix `Firehose_20150804`). Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.kinesis import decode_blob
from sagelab.api.operations import FIREHOSE, Audit, Call, OperationTable

if TYPE_CHECKING:
    from sagelab.firehose.service import DeliveryStreamService
    from sagelab.platform import Platform

op = FIREHOSE.op
STREAM = "deliverystream/{DeliveryStreamName}"


class FirehoseFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def firehose(self) -> DeliveryStreamService:
        return self.platform.firehose

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def put_record(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        [record_id] = self.firehose.put(p["DeliveryStreamName"], [decode_blob(p["Record"]["Data"], "Record.Data")])
        return {"RecordId": record_id, "Encrypted": False}

    def put_record_batch(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        ids = self.firehose.put(p["DeliveryStreamName"], [decode_blob(x["Data"], f"Records.{i + 1}.Data")
                                                          for i, x in enumerate(p["Records"])])
        return {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": i} for i in ids]}

    # CloudTrail logs Firehose's control plane only: PutRecord and PutRecordBatch are not recorded.
    operations = OperationTable("firehose", FIREHOSE, (
        op("CreateDeliveryStream", lambda face, p, r: {
            "DeliveryStreamARN": face.firehose.create(p, r.region)}, STREAM),
        op("DescribeDeliveryStream", lambda face, p, r: face.firehose.describe(p["DeliveryStreamName"]), STREAM,
           read_only=True),
        op("ListDeliveryStreams", lambda face, p, r: face.firehose.list(p), read_only=True),
        op("DeleteDeliveryStream", lambda face, p, r: face.firehose.delete(p["DeliveryStreamName"]), STREAM),
        op("PutRecord", put_record, STREAM, audit=Audit.NOT_RECORDED),
        op("PutRecordBatch", put_record_batch, STREAM, audit=Audit.NOT_RECORDED),
    ))
    wire = JsonService("Firehose_20150804", operations)
