"""Kinesis Data Streams: streams as resource documents, their records in a durable log each.

A stream's metadata (mode, retention, shards and their hash key and sequence number ranges) is a resource
document; its records live in its own `RecordLog` under `<home>/streams/<name>/`, opened on first use and
kept open. Resharding (SplitShard, MergeShards, UpdateShardCount) closes parent shards at the stream's last
record counter and opens children after it, under the log's lock, so no record is routed in between. The
stream is ACTIVE again when the call returns (AWS passes through UPDATING for seconds; waiters accept both).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagelab.account import Account, HomePaths
from sagelab.errors import ValidationError
from sagelab.pagination import decode_token, encode_token
from sagelab.storage.resources import AlreadyExists, ResourceStore
from sagelab.streams.errors import InvalidArgument, LimitExceeded, ResourceNotFoundError, StreamInUse
from sagelab.streams.iterators import IteratorCodec, Position
from sagelab.streams.record_log import LogClosed, ReadResult, Record, RecordLog
from sagelab.streams.shards import (
    ShardMap,
    hash_key,
    parse_hash_key,
    parse_sequence_number,
    sequence_number,
    shard_id,
    shard_number,
)
from sagelab.streams.throttle import ShardThrottle

KIND = "kinesis-stream"
#: AWS's limits on what one call carries.
MAX_RECORD_BYTES = 1 << 20
MAX_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 << 20
MAX_GET_RECORDS = 10_000
#: An on-demand stream starts with four shards, as on AWS.
ON_DEMAND_SHARDS = 4
MAX_SHARDS = 500
MIN_RETENTION_HOURS, MAX_RETENTION_HOURS = 24, 8760


@dataclasses.dataclass
class _Stream:
    name: str
    arn: str
    created: float
    shards: ShardMap
    log: RecordLog


@dataclasses.dataclass(frozen=True)
class PutResult:
    shard: int | None
    sequence_number: str | None
    error_code: str | None = None
    error_message: str | None = None


class StreamService:
    def __init__(self, *, resources: ResourceStore, account: Account, home: HomePaths,
                 iterator_key: Callable[[], bytes], clock: Callable[[], float] = time.time,
                 shard_write_limits: bool = False):
        self.resources = resources
        self.account = account
        self.folder: Path = home.root / "streams"
        self.clock = clock
        self.throttle = ShardThrottle(clock) if shard_write_limits else None
        self._iterator_key = iterator_key
        self._codec: IteratorCodec | None = None
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()

    # --- life cycle -------------------------------------------------------------------------------------
    def recover(self) -> None:
        """Open every stream's log now: a torn tail is cut off before the first request."""
        for resource in self.resources.list(KIND):
            self._stream(resource.name)

    def close(self) -> None:
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.log.close()

    @property
    def codec(self) -> IteratorCodec:
        if self._codec is None:
            self._codec = IteratorCodec(self._iterator_key())
        return self._codec

    # --- streams ----------------------------------------------------------------------------------------
    def create_stream(self, name: str, shard_count: int | None, mode: str, region: str) -> None:
        if mode == "ON_DEMAND":
            if shard_count is not None:
                raise InvalidArgument("ShardCount must not be given for an ON_DEMAND stream.")
            shard_count = ON_DEMAND_SHARDS
        elif shard_count is None:
            raise InvalidArgument("ShardCount is required for a PROVISIONED stream.")
        if shard_count > MAX_SHARDS:
            raise LimitExceeded(f"ShardCount {shard_count} exceeds the limit of {MAX_SHARDS} shards per stream.")
        now = self.clock()
        doc = {"StreamName": name, "StreamARN": self.account.arn("kinesis", f"stream/{name}", region),
               "StreamModeDetails": {"StreamMode": mode}, "RetentionPeriodHours": MIN_RETENTION_HOURS,
               "StreamCreationTimestamp": now, "EncryptionType": "NONE",
               "_shards": ShardMap.create(shard_count, counter=0, now=now).to_doc()}
        folder = self._folder(name)
        if folder.exists():  # left by a crash during DeleteStream: a new stream starts with no records
            RecordLog(folder).destroy()
        try:
            self.resources.insert(KIND, name, doc["StreamARN"], "ACTIVE", doc, created_at=now)
        except AlreadyExists:
            raise StreamInUse(f"Stream {name} under account {self.account.id} already exists.") from None

    def delete_stream(self, ref: str) -> None:
        name = self._name(ref)
        with self._lock:
            stream = self._streams.pop(name, None)
        if not self.resources.delete(KIND, name):
            raise self._not_found(name)
        if stream is not None:
            stream.log.destroy()
        else:
            RecordLog(self._folder(name)).destroy()

    def describe_stream(self, ref: str, limit: int | None = None, exclusive_start: str | None = None,
                        ) -> dict[str, Any]:
        stream = self._stream(self._name(ref))
        doc = self._summary(stream)
        shards = [s for s in stream.shards.shards
                  if exclusive_start is None or s.number > shard_number(exclusive_start)]
        size = limit or 100
        return {"StreamDescription": {**{k: doc[k] for k in ("StreamName", "StreamARN", "StreamStatus",
                                                            "StreamModeDetails", "RetentionPeriodHours",
                                                            "StreamCreationTimestamp", "EnhancedMonitoring",
                                                            "EncryptionType")},
                                      "Shards": [s.describe() for s in shards[:size]],
                                      "HasMoreShards": len(shards) > size}}

    def describe_stream_summary(self, ref: str) -> dict[str, Any]:
        return {"StreamDescriptionSummary": self._summary(self._stream(self._name(ref)))}

    def list_streams(self, limit: int | None, exclusive_start: str | None, next_token: str | None,
                     ) -> dict[str, Any]:
        resources = sorted(self.resources.list(KIND), key=lambda r: r.name)
        start = decode_token(next_token)
        if exclusive_start:
            resources = [r for r in resources if r.name > exclusive_start]
        size = limit or 100
        chunk = resources[start:start + size]
        more = start + size < len(resources)
        answer: dict[str, Any] = {
            "StreamNames": [r.name for r in chunk], "HasMoreStreams": more,
            "StreamSummaries": [{"StreamName": r.name, "StreamARN": r.arn, "StreamStatus": r.status,
                                 "StreamModeDetails": r.doc["StreamModeDetails"],
                                 "StreamCreationTimestamp": r.doc["StreamCreationTimestamp"]} for r in chunk]}
        if more:
            answer["NextToken"] = encode_token(start + size)
        return answer

    def list_shards(self, params: dict[str, Any]) -> dict[str, Any]:
        token, ref = params.get("NextToken"), params.get("StreamName") or params.get("StreamARN")
        if token:
            named, offset, shard_filter, exclusive = _read_list_token(token)
            # botocore's paginator sends StreamName with NextToken: accepted when they agree.
            if ref and self._name(ref) != named:
                raise InvalidArgument(f"NextToken was issued for stream {named}, not {self._name(ref)}.")
            ref = named
        else:
            if not ref:
                raise InvalidArgument("Either NextToken or StreamName must be provided.")
            offset, shard_filter, exclusive = 0, params.get("ShardFilter"), params.get("ExclusiveStartShardId")
        stream = self._stream(self._name(ref))
        shards = self._filtered(stream, shard_filter, exclusive)
        size = params.get("MaxResults") or 1000
        answer: dict[str, Any] = {"Shards": [s.describe() for s in shards[offset:offset + size]]}
        if offset + size < len(shards):
            answer["NextToken"] = _list_token(stream.name, offset + size, shard_filter, exclusive)
        return answer

    def _filtered(self, stream: _Stream, shard_filter: dict[str, Any] | None, exclusive: str | None) -> list:
        shards = list(stream.shards.shards)
        if exclusive:
            shards = [s for s in shards if s.number > shard_number(exclusive)]
        if not shard_filter:
            return shards
        kind = shard_filter["Type"]
        if kind == "AFTER_SHARD_ID":
            if not shard_filter.get("ShardId"):
                raise InvalidArgument("ShardFilter type AFTER_SHARD_ID needs a ShardId.")
            return [s for s in shards if s.number > shard_number(shard_filter["ShardId"])]
        if kind == "AT_LATEST":
            return [s for s in shards if s.is_open]
        if kind in ("AT_TRIM_HORIZON", "FROM_TRIM_HORIZON"):
            horizon = self.clock() - stream.log.retention_seconds
            alive = [s for s in shards if s.closed_at is None or s.closed_at >= horizon]
            if kind == "FROM_TRIM_HORIZON":
                return alive
            return [s for s in alive if s.parent is None or stream.shards.get(s.parent) not in alive]
        if kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
            if shard_filter.get("Timestamp") is None:
                raise InvalidArgument(f"ShardFilter type {kind} needs a Timestamp.")
            at = float(shard_filter["Timestamp"])
            if kind == "AT_TIMESTAMP":
                return [s for s in shards if s.opened_at <= at and (s.closed_at is None or s.closed_at > at)]
            return [s for s in shards if s.closed_at is None or s.closed_at > at]
        raise InvalidArgument(f"Unknown ShardFilter type {kind!r}.")

    # --- retention and tags ------------------------------------------------------------------------------
    def change_retention(self, ref: str, hours: int, *, increase: bool) -> None:
        stream = self._stream(self._name(ref))
        current = self._doc(stream.name)["RetentionPeriodHours"]
        if not MIN_RETENTION_HOURS <= hours <= MAX_RETENTION_HOURS:
            raise InvalidArgument(f"RetentionPeriodHours {hours} is outside [{MIN_RETENTION_HOURS}, "
                                  f"{MAX_RETENTION_HOURS}].")
        if increase and hours < current:
            raise InvalidArgument(f"Requested retention period ({hours} hours) for stream {stream.name} can not "
                                  f"be shorter than existing retention period ({current} hours). Use "
                                  "DecreaseRetentionPeriod API.")
        if not increase and hours > current:
            raise InvalidArgument(f"Requested retention period ({hours} hours) for stream {stream.name} can not "
                                  f"be longer than existing retention period ({current} hours). Use "
                                  "IncreaseRetentionPeriod API.")
        self.resources.update(KIND, stream.name, lambda r: r.doc.update(RetentionPeriodHours=hours))
        stream.log.retention_seconds = hours * 3600
        stream.log.trim()

    def add_tags(self, ref: str, tags: dict[str, str]) -> None:
        stream = self._stream(self._name(ref))
        if len(self.resources.get_tags(stream.arn) | tags) > 50:
            raise InvalidArgument("A stream can have at most 50 tags.")
        self.resources.put_tags(stream.arn, tags)

    def remove_tags(self, ref: str, keys: list[str]) -> None:
        self.resources.delete_tags(self._stream(self._name(ref)).arn, keys)

    def list_tags(self, ref: str, exclusive_start: str | None, limit: int | None) -> dict[str, Any]:
        tags = sorted(self.resources.get_tags(self._stream(self._name(ref)).arn).items())
        if exclusive_start:
            tags = [t for t in tags if t[0] > exclusive_start]
        size = limit or 50
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags[:size]], "HasMoreTags": len(tags) > size}

    # --- resharding ---------------------------------------------------------------------------------------
    def split_shard(self, ref: str, shard: str, new_start: str) -> None:
        key = parse_hash_key(new_start, "NewStartingHashKey")
        self._reshard(ref, lambda shards, counter, now: shards.split(shard_number(shard), key, counter=counter,
                                                                     now=now))

    def merge_shards(self, ref: str, shard: str, adjacent: str) -> None:
        self._reshard(ref, lambda shards, counter, now: shards.merge(shard_number(shard), shard_number(adjacent),
                                                                     counter=counter, now=now))

    def update_shard_count(self, ref: str, target: int) -> dict[str, Any]:
        stream = self._stream(self._name(ref))
        current = len(stream.shards.open_shards)
        if not (current + 1) // 2 <= target <= current * 2 or target > MAX_SHARDS:
            raise InvalidArgument(f"TargetShardCount {target} must be between half ({(current + 1) // 2}) and "
                                  f"double ({current * 2}) the current open shard count {current}, and at most "
                                  f"{MAX_SHARDS}.")
        if target != current:
            self._reshard(ref, lambda shards, counter, now: shards.rescale(target, counter=counter, now=now))
        return {"StreamName": stream.name, "StreamARN": stream.arn, "CurrentShardCount": current,
                "TargetShardCount": target}

    def _reshard(self, ref: str, change: Callable[[ShardMap, int, float], None]) -> None:
        stream = self._stream(self._name(ref))

        def apply(counter: int) -> None:
            shards = ShardMap.from_doc(stream.shards.to_doc())
            change(shards, counter, self.clock())
            if len(shards.open_shards) > MAX_SHARDS:
                raise LimitExceeded(f"A stream can have at most {MAX_SHARDS} open shards.")
            self.resources.update(KIND, stream.name, lambda r: r.doc.update(_shards=shards.to_doc()))
            stream.shards = shards

        stream.log.locked(apply)

    # --- records ------------------------------------------------------------------------------------------
    def put_records(self, ref: str, entries: list[tuple[str, bytes, str | None]]) -> list[PutResult]:
        """Append (partition key, data, explicit hash key) entries, each answered with its shard and
        sequence number, or (with shard write limits on) a per-record ProvisionedThroughputExceeded."""
        stream = self._stream(self._name(ref))
        keys = []
        total = 0
        for i, (partition_key, data, explicit) in enumerate(entries):
            size = len(data) + len(partition_key.encode())
            if size > MAX_RECORD_BYTES:
                raise ValidationError(f"1 validation error detected: Value at 'records.{i + 1}.member.data' "
                                      f"failed to satisfy constraint: Member must have length less than or equal "
                                      f"to {MAX_RECORD_BYTES} (the data blob plus partition key is {size} bytes; "
                                      "a record is at most 1 MiB).")
            total += size
            keys.append(parse_hash_key(explicit) if explicit is not None else hash_key(partition_key))
        if total > MAX_PUT_RECORDS_BYTES:
            raise ValidationError(f"Records size {total} bytes exceeds the limit of {MAX_PUT_RECORDS_BYTES} bytes "
                                  "(5 MiB) for one PutRecords request.")
        if len(entries) > MAX_PUT_RECORDS:
            raise ValidationError(f"Records has {len(entries)} entries, more than the limit of {MAX_PUT_RECORDS} "
                                  "records for one PutRecords request.")
        results: list[PutResult | None] = [None] * len(entries)
        accepted = list(range(len(entries)))
        if self.throttle is not None:
            accepted = []
            second = int(self.clock())
            for i, key in enumerate(keys):
                shard = stream.shards.route(key).number
                if self.throttle.admit(stream.name, shard, len(entries[i][1]), second):
                    accepted.append(i)
                else:
                    results[i] = PutResult(None, None, "ProvisionedThroughputExceededException",
                                           f"Rate exceeded for shard {shard_id(shard)} in stream {stream.name} "
                                           f"under account {self.account.id}.")
        # The log calls the router under its lock: no reshard comes between routing and numbering.
        try:
            written = stream.log.append([(entries[i][0], entries[i][1]) for i in accepted],
                                        lambda j: stream.shards.route(keys[accepted[j]]).number) if accepted else []
        except LogClosed:  # deleted while this call was on its way
            raise self._not_found(stream.name) from None
        for i, record in zip(accepted, written, strict=True):
            results[i] = PutResult(record.shard, sequence_number(record.counter, record.shard))
        return [r for r in results if r is not None]

    def shard_iterator(self, ref: str, shard: str, kind: str, sequence: str | None,
                       timestamp: float | None) -> str:
        stream = self._stream(self._name(ref))
        number = shard_number(shard)
        if stream.shards.get(number) is None:
            raise ResourceNotFoundError(f"Shard {shard} in stream {stream.name} under account {self.account.id} "
                                        "does not exist")
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if not sequence:
                raise InvalidArgument(f"StartingSequenceNumber is required for ShardIteratorType {kind}.")
            counter, owner = parse_sequence_number(sequence)
            if owner != number:
                raise InvalidArgument(f"Invalid StartingSequenceNumber. It encodes shard {shard_id(owner)}, not "
                                      f"{shard}, for stream {stream.name} under account {self.account.id}.")
            after = counter - 1 if kind == "AT_SEQUENCE_NUMBER" else counter
        elif kind == "TRIM_HORIZON":
            after = -1
        elif kind == "LATEST":
            after = stream.log.last_counter
        elif kind == "AT_TIMESTAMP":
            if timestamp is None:
                raise InvalidArgument("Timestamp is required for ShardIteratorType AT_TIMESTAMP.")
            after = stream.log.position_at(number, int(float(timestamp) * 1000))
        else:
            raise InvalidArgument(f"Unknown ShardIteratorType {kind!r}.")
        return self.codec.issue(Position(stream.name, stream.created, number, after), self.clock())

    def get_records(self, token: str, limit: int | None) -> tuple[ReadResult, str | None, int]:
        """The records after the iterator's position, the next iterator (None once a closed shard is read to
        its end) and MillisBehindLatest."""
        now = self.clock()
        position = self.codec.read(token, now)
        if limit is not None and not 1 <= limit <= MAX_GET_RECORDS:
            raise InvalidArgument(f"Limit {limit} must be between 1 and {MAX_GET_RECORDS}.")
        stream = self._stream(position.stream)
        if stream.created != position.created:
            raise ResourceNotFoundError(f"Stream {position.stream} was deleted after the iterator was issued.")
        result = stream.log.read(position.shard, position.after, limit or MAX_GET_RECORDS)
        shard = stream.shards.get(position.shard)
        # A closed shard is finished once its last record is durable (records numbered before the reshard
        # may still be on their way to disk) and this read reached it.
        finished = (shard is not None and shard.ending is not None and not result.behind
                    and stream.log.durable_counter >= shard.ending)
        following = None if finished else self.codec.issue(
            dataclasses.replace(position, after=result.position), now)
        behind = 0
        if result.behind and result.records:
            behind = max(0, int(now * 1000) - result.records[-1].arrival_ms)
        return result, following, behind

    # --- reading for other services (Firehose, consumers) ---------------------------------------------------
    def shard_numbers(self, ref: str) -> list[int]:
        return [s.number for s in self._stream(self._name(ref)).shards.shards]

    def latest_counter(self, ref: str) -> int:
        """The counter of the stream's newest record: reading after it starts at the next (LATEST)."""
        return self._stream(self._name(ref)).log.last_counter

    def read_shard(self, ref: str, shard: int, after: int, limit: int, max_bytes: int = 10 << 20) -> list[Record]:
        """The shard's records after counter `after`, as a consumer with its own checkpoint reads them."""
        return self._stream(self._name(ref)).log.read(shard, after, limit, max_bytes).records

    # --- helpers ------------------------------------------------------------------------------------------
    def _summary(self, stream: _Stream) -> dict[str, Any]:
        doc = self._doc(stream.name)
        return {"StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": "ACTIVE",
                "StreamModeDetails": doc["StreamModeDetails"], "RetentionPeriodHours": doc["RetentionPeriodHours"],
                "StreamCreationTimestamp": doc["StreamCreationTimestamp"],
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE",
                "OpenShardCount": len(stream.shards.open_shards), "ConsumerCount": 0}

    def _doc(self, name: str) -> dict[str, Any]:
        resource = self.resources.get(KIND, name)
        if resource is None:
            raise self._not_found(name)
        return resource.doc

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is not None:
            return stream
        with self._lock:
            stream = self._streams.get(name)
            if stream is None:
                resource = self.resources.get(KIND, name)
                if resource is None:
                    raise self._not_found(name)
                log = RecordLog(self._folder(name), clock=self.clock,
                                retention_seconds=resource.doc["RetentionPeriodHours"] * 3600).open()
                shards = ShardMap.from_doc(resource.doc["_shards"])
                log.skip_through(max(s.starting - 1 if s.ending is None else s.ending for s in shards.shards))
                stream = _Stream(name, resource.arn, resource.doc["StreamCreationTimestamp"], shards, log)
                self._streams[name] = stream
        return stream

    def _folder(self, name: str) -> Path:
        return self.folder / name

    @staticmethod
    def _name(ref: str | None) -> str:
        if not ref:
            raise InvalidArgument("Either StreamName or StreamARN must be provided.")
        return ref.rsplit(":stream/", 1)[1] if ref.startswith("arn:") and ":stream/" in ref else ref

    def _not_found(self, name: str) -> ResourceNotFoundError:
        return ResourceNotFoundError(f"Stream {name} under account {self.account.id} not found.")


def _list_token(stream: str, offset: int, shard_filter: dict[str, Any] | None, exclusive: str | None) -> str:
    body = json.dumps({"s": stream, "o": offset, "f": shard_filter, "x": exclusive}, default=str)
    return base64.urlsafe_b64encode(body.encode()).decode()


def _read_list_token(token: str) -> tuple[str, int, dict[str, Any] | None, str | None]:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        return body["s"], int(body["o"]), body["f"], body["x"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(f"Invalid NextToken {token[:40]!r}: not a ListShards token of this server.") from None


def random_key() -> bytes:
    return os.urandom(32)


__all__ = ["PutResult", "Record", "StreamService", "random_key"]
