"""The Kinesis Data Streams face (AWS JSON 1.1, target prefix `Kinesis_20131202`). Translation only.

botocore 1.44's Kinesis model speaks plain JSON (`protocols: ["json"]`), so no CBOR is needed: blobs
arrive and leave as base64 strings, timestamps as epoch seconds.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sagelab.api.http import JSON_11, Request, Response
from sagelab.api.json_protocol import JsonService, SerializationError
from sagelab.api.operations import KINESIS, Audit, Call, OperationTable
from sagelab.streams.errors import ProvisionedThroughputExceeded
from sagelab.streams.shards import sequence_number, shard_id

if TYPE_CHECKING:
    from sagelab.platform import Platform
    from sagelab.streams.record_log import Record
    from sagelab.streams.service import StreamService

op = KINESIS.op
STREAM = "stream/{StreamARN|StreamName}"


def _stream(params: dict[str, Any]) -> str:
    return params.get("StreamARN") or params.get("StreamName")


def decode_blob(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SerializationError(f"{field} is not valid base64.") from None


def records_body(records: Sequence[Record], following: str | None, behind: int) -> bytes:
    """GetRecords' answer, written directly: base64 and decimal strings need no JSON escaping, and
    json.dumps spends most of a 10,000-record answer scanning them for characters to escape."""
    entry = b'{"SequenceNumber":"%s","ApproximateArrivalTimestamp":%s,"Data":"%s","PartitionKey":%s}'
    stamps: dict[int, bytes] = {}  # a PutRecords' records share their arrival time
    entries = []
    for record in records:
        stamp = stamps.get(record.arrival_ms)
        if stamp is None:
            stamp = stamps[record.arrival_ms] = str(record.arrival_ms / 1000).encode()
        entries.append(entry % (sequence_number(record.counter, record.shard).encode(), stamp,
                                base64.b64encode(record.data), _json_string(record.partition_key)))
    parts = [b'{"Records":[', b",".join(entries)]
    parts.append(f'],"MillisBehindLatest":{behind}'.encode())
    if following is not None:
        parts.append(f',"NextShardIterator":"{following}"'.encode())  # base64url and ".": nothing to escape
    parts.append(b"}")
    return b"".join(parts)


def _json_string(text: str) -> bytes:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return b'"' + text.encode() + b'"'
    return json.dumps(text).encode()


class KinesisFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def streams(self) -> StreamService:
        return self.platform.streams

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        if call.operation.name == "GetRecords":  # rendered by hand: see records_body
            return call.operation.handler(self, call.params, request)
        return self.wire.answer(self, call, request)

    # --- handlers -------------------------------------------------------------------------------------
    def create_stream(self, p: dict[str, Any], r: Request) -> None:
        mode = p.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
        self.streams.create_stream(p["StreamName"], p.get("ShardCount"), mode, r.region)
        if p.get("Tags"):
            self.streams.add_tags(p["StreamName"], p["Tags"])

    def put_record(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        entry = (p["PartitionKey"], decode_blob(p["Data"], "Data"), p.get("ExplicitHashKey"))
        result = self.streams.put_records(_stream(p), [entry])[0]
        if result.error_code:
            raise ProvisionedThroughputExceeded(result.error_message or "Rate exceeded.")
        return {"ShardId": shard_id(result.shard or 0), "SequenceNumber": result.sequence_number,
                "EncryptionType": "NONE"}

    def put_records(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        entries = [(e["PartitionKey"], decode_blob(e["Data"], f"Records.{i + 1}.Data"), e.get("ExplicitHashKey"))
                   for i, e in enumerate(p["Records"])]
        results = self.streams.put_records(_stream(p), entries)
        out = [{"ErrorCode": x.error_code, "ErrorMessage": x.error_message} if x.error_code else
               {"SequenceNumber": x.sequence_number, "ShardId": shard_id(x.shard or 0)} for x in results]
        return {"FailedRecordCount": sum(1 for x in results if x.error_code), "Records": out,
                "EncryptionType": "NONE"}

    def get_records(self, p: dict[str, Any], r: Request) -> Response:
        result, following, behind = self.streams.get_records(p["ShardIterator"], p.get("Limit"))
        return Response(body=records_body(result.records, following, behind), content_type=JSON_11)

    def get_shard_iterator(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        return {"ShardIterator": self.streams.shard_iterator(
            _stream(p), p["ShardId"], p["ShardIteratorType"], p.get("StartingSequenceNumber"), p.get("Timestamp"))}

    operations = OperationTable("kinesis", KINESIS, (
        op("CreateStream", create_stream, "stream/{StreamName}"),
        op("DeleteStream", lambda face, p, r: face.streams.delete_stream(_stream(p)), STREAM),
        op("DescribeStream", lambda face, p, r: face.streams.describe_stream(
            _stream(p), p.get("Limit"), p.get("ExclusiveStartShardId")), STREAM, read_only=True),
        op("DescribeStreamSummary", lambda face, p, r: face.streams.describe_stream_summary(_stream(p)), STREAM,
           read_only=True),
        op("ListStreams", lambda face, p, r: face.streams.list_streams(
            p.get("Limit"), p.get("ExclusiveStartStreamName"), p.get("NextToken")), read_only=True),
        op("ListShards", lambda face, p, r: face.streams.list_shards(p), STREAM, read_only=True),
        op("PutRecord", put_record, STREAM, audit=Audit.DATA),
        op("PutRecords", put_records, STREAM, audit=Audit.DATA),
        op("GetShardIterator", get_shard_iterator, STREAM, audit=Audit.DATA, read_only=True),
        op("GetRecords", get_records, "stream/{StreamARN}", audit=Audit.DATA, read_only=True),
        op("SplitShard", lambda face, p, r: face.streams.split_shard(
            _stream(p), p["ShardToSplit"], p["NewStartingHashKey"]), STREAM),
        op("MergeShards", lambda face, p, r: face.streams.merge_shards(
            _stream(p), p["ShardToMerge"], p["AdjacentShardToMerge"]), STREAM),
        op("UpdateShardCount", lambda face, p, r: face.streams.update_shard_count(
            _stream(p), p["TargetShardCount"]), STREAM),
        op("IncreaseStreamRetentionPeriod", lambda face, p, r: face.streams.change_retention(
            _stream(p), p["RetentionPeriodHours"], increase=True), STREAM),
        op("DecreaseStreamRetentionPeriod", lambda face, p, r: face.streams.change_retention(
            _stream(p), p["RetentionPeriodHours"], increase=False), STREAM),
        op("AddTagsToStream", lambda face, p, r: face.streams.add_tags(_stream(p), p["Tags"]), STREAM),
        op("RemoveTagsFromStream", lambda face, p, r: face.streams.remove_tags(_stream(p), p["TagKeys"]), STREAM),
        op("ListTagsForStream", lambda face, p, r: face.streams.list_tags(
            _stream(p), p.get("ExclusiveStartTagKey"), p.get("Limit")), STREAM, read_only=True),
    ))
    wire = JsonService("Kinesis_20131202", operations)

