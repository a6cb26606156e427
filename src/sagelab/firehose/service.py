"""Firehose delivery streams: records buffered durably, delivered into the lake by size or by interval.

A DirectPut delivery stream appends what PutRecord(Batch) sends to a `RecordLog` of its own (fsynced before
the answer, like a Kinesis stream's) and remembers, in its resource document, the counter of the last record
it delivered. A KinesisStreamAsSource delivery stream reads its Kinesis stream instead, remembering a
position per shard. One delivery thread looks at every delivery stream a few times a second and delivers a
buffer once it holds `SizeInMBs` or its oldest record is `IntervalInSeconds` old, whichever comes first:
transformation, format conversion, compression, one object under the rendered prefix, failures under the
error prefix, then the checkpoint. A crash between an object and its checkpoint delivers that buffer again
(at least once, as on AWS); a crash before it loses nothing that was acknowledged.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.account import Account, HomePaths
from sagelab.errors import SagelabError, ValidationError
from sagelab.firehose import encoding, layout
from sagelab.lake.blobs import BlobStore
from sagelab.storage.resources import AlreadyExists, ResourceStore
from sagelab.streams.errors import InvalidArgument, ResourceNotFoundError, StreamInUse
from sagelab.streams.record_log import LogClosed, Record, RecordLog

if TYPE_CHECKING:
    from sagelab.catalog.store import CatalogStore
    from sagelab.streams.service import StreamService

KIND = "firehose-delivery-stream"
MAX_RECORD_BYTES = 1000 * 1024
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 << 20
#: How often the delivery thread looks at the buffers.
TICK_SECONDS = 0.2
_DEFAULT_HINTS = {"SizeInMBs": 5, "IntervalInSeconds": 300}


@dataclasses.dataclass
class _Delivery:
    name: str
    arn: str
    region: str
    destination: dict[str, Any]
    #: The Kinesis stream read from, or None for DirectPut.
    source: str | None
    log: RecordLog | None
    delivered: int = -1
    positions: dict[int, int] = dataclasses.field(default_factory=dict)
    failure: str | None = None
    #: Records of a DirectPut buffer not yet delivered: their bytes, and whether any exist.
    pending_bytes: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def size_limit(self) -> int:
        return self.destination["BufferingHints"]["SizeInMBs"] << 20

    @property
    def interval(self) -> float:
        return self.destination["BufferingHints"]["IntervalInSeconds"]


class DeliveryStreamService:
    def __init__(self, *, resources: ResourceStore, account: Account, home: HomePaths, blobs: BlobStore,
                 catalog: CatalogStore, streams: StreamService, clock: Callable[[], float] = time.time):
        self.resources = resources
        self.account = account
        self.folder: Path = home.root / "firehose"
        self.blobs = blobs
        self.catalog = catalog
        self.streams = streams
        self.clock = clock
        self._deliveries: dict[str, _Delivery] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------
    def recover(self) -> None:
        """Open every delivery stream's buffer and start delivering (what a crash left is delivered now)."""
        for resource in self.resources.list(KIND):
            self._delivery(resource.name)
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="firehose-delivery", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            deliveries, self._deliveries = list(self._deliveries.values()), {}
        for delivery in deliveries:
            if delivery.log is not None:
                delivery.log.close()

    # --- delivery streams -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], region: str) -> str:
        name = params["DeliveryStreamName"]
        kind = params.get("DeliveryStreamType", "DirectPut")
        destination = params.get("ExtendedS3DestinationConfiguration") or params.get("S3DestinationConfiguration")
        if destination is None:
            raise InvalidArgument("sagelab delivers to S3 only: give ExtendedS3DestinationConfiguration.")
        destination = self._checked_destination(destination)
        source = None
        if kind == "KinesisStreamAsSource":
            config = params.get("KinesisStreamSourceConfiguration")
            if not config:
                raise InvalidArgument("KinesisStreamSourceConfiguration is required for a KinesisStreamAsSource "
                                      "delivery stream.")
            source = config["KinesisStreamARN"].rsplit(":stream/", 1)[-1]
            self.streams.describe_stream_summary(source)  # ResourceNotFoundException when it does not exist
        elif kind != "DirectPut":
            raise InvalidArgument(f"DeliveryStreamType {kind} is not offered: DirectPut or KinesisStreamAsSource.")
        now = self.clock()
        arn = self.account.arn("firehose", f"deliverystream/{name}", region)
        doc: dict[str, Any] = {
            "DeliveryStreamName": name, "DeliveryStreamARN": arn, "DeliveryStreamType": kind,
            "CreateTimestamp": now, "VersionId": "1", "_destination": destination, "_region": region,
            "_delivered": -1, "_positions": {}}
        if source is not None:
            doc["Source"] = {"KinesisStreamSourceDescription": {
                **params["KinesisStreamSourceConfiguration"], "DeliveryStartTimestamp": now}}
            doc["_positions"] = {str(n): -1 for n in self.streams.shard_numbers(source)}
        folder = self.folder / name
        if folder.exists():  # left by a crash during DeleteDeliveryStream: start with an empty buffer
            RecordLog(folder).destroy()
        try:
            self.resources.insert(KIND, name, arn, "ACTIVE", doc, created_at=now)
        except AlreadyExists:
            raise StreamInUse(f"Firehose {name} under account {self.account.id} already exists.") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        self._delivery(name)
        self._start()
        return arn

    def _checked_destination(self, config: dict[str, Any]) -> dict[str, Any]:
        destination = {"BufferingHints": {**_DEFAULT_HINTS, **config.get("BufferingHints", {})},
                       "CompressionFormat": config.get("CompressionFormat", "UNCOMPRESSED"),
                       "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
                       "Prefix": config.get("Prefix", ""), "S3BackupMode": "Disabled",
                       **{k: v for k, v in config.items() if k not in ("BufferingHints", "CompressionFormat",
                                                                      "Prefix", "EncryptionConfiguration")}}
        if not destination["BucketARN"].startswith("arn:aws:s3:::"):
            raise InvalidArgument(f"BucketARN {destination['BucketARN']!r} is not an S3 bucket ARN.")
        layout.check_prefix(destination["Prefix"], "Prefix")
        layout.check_prefix(destination.get("ErrorOutputPrefix", ""), "ErrorOutputPrefix")
        if "!{" in destination["Prefix"] and not destination.get("ErrorOutputPrefix"):
            raise InvalidArgument("ErrorOutputPrefix is required when Prefix uses expressions.")
        if destination["CompressionFormat"] not in ("UNCOMPRESSED", "GZIP", "Snappy"):
            raise InvalidArgument(f"CompressionFormat {destination['CompressionFormat']} is not offered by "
                                  "sagelab yet: UNCOMPRESSED, GZIP or Snappy.")
        conversion = destination.get("DataFormatConversionConfiguration")
        if conversion and conversion.get("Enabled", True):
            if destination["CompressionFormat"] != "UNCOMPRESSED":
                raise InvalidArgument("CompressionFormat must be UNCOMPRESSED when data format conversion is "
                                      "enabled (Parquet and ORC compress inside the file).")
            schema = conversion.get("SchemaConfiguration", {})
            self.catalog.get_table(schema["DatabaseName"], schema["TableName"])  # the table must exist
        for processor in self._processors(destination):
            encoding.load_function(processor)
        return destination

    @staticmethod
    def _processors(destination: dict[str, Any]) -> list[str]:
        config = destination.get("ProcessingConfiguration") or {}
        if not config.get("Enabled"):
            return []
        functions = []
        for processor in config.get("Processors", []):
            if processor["Type"] != "Lambda":
                raise InvalidArgument(f"Processor type {processor['Type']} is not offered: use Lambda with a "
                                      "LambdaArn of python:<module>:<function>.")
            for parameter in processor.get("Parameters", []):
                if parameter["ParameterName"] == "LambdaArn":
                    functions.append(parameter["ParameterValue"])
        return functions

    def describe(self, name: str) -> dict[str, Any]:
        resource = self.resources.get(KIND, name)
        if resource is None:
            raise self._not_found(name)
        doc = resource.doc
        delivery = self._delivery(name)
        description: dict[str, Any] = {
            **{k: v for k, v in doc.items() if not k.startswith("_")}, "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"}, "HasMoreDestinations": False,
            "Destinations": [{"DestinationId": "destinationId-000000000001",
                              "ExtendedS3DestinationDescription": doc["_destination"]}]}
        if delivery.failure:
            description["FailureDescription"] = {"Type": "UNKNOWN_ERROR", "Details": delivery.failure}
        return {"DeliveryStreamDescription": description}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        names = sorted(r.name for r in self.resources.list(KIND)
                       if params.get("DeliveryStreamType") in (None, r.doc["DeliveryStreamType"]))
        start = params.get("ExclusiveStartDeliveryStreamName")
        if start:
            names = [n for n in names if n > start]
        size = params.get("Limit") or 10
        return {"DeliveryStreamNames": names[:size], "HasMoreDeliveryStreams": len(names) > size}

    def delete(self, name: str) -> None:
        with self._lock:
            delivery = self._deliveries.pop(name, None)
        if not self.resources.delete(KIND, name):
            raise self._not_found(name)
        if delivery is not None and delivery.log is not None:
            with delivery.lock:
                delivery.log.destroy()

    # --- records ------------------------------------------------------------------------------------------
    def put(self, name: str, records: list[bytes]) -> list[str]:
        delivery = self._delivery(name)
        if delivery.log is None:
            raise InvalidArgument(f"This operation is not permitted on KinesisStreamAsSource delivery stream type "
                                  f"({name} reads Kinesis stream {delivery.source}).")
        for i, data in enumerate(records):
            if len(data) > MAX_RECORD_BYTES:
                raise ValidationError(f"Record {i + 1} is {len(data)} bytes: a Firehose record is at most "
                                      f"{MAX_RECORD_BYTES} bytes (1,000 KiB) before base64 encoding.")
        if len(records) > MAX_BATCH_RECORDS:
            raise ValidationError(f"PutRecordBatch takes at most {MAX_BATCH_RECORDS} records; {len(records)} came.")
        if sum(map(len, records)) > MAX_BATCH_BYTES:
            raise ValidationError(f"PutRecordBatch takes at most {MAX_BATCH_BYTES} bytes (4 MiB) of records.")
        try:
            written = delivery.log.append([("", data) for data in records], lambda i: 0)
        except LogClosed:  # deleted while this call was on its way
            raise self._not_found(name) from None
        with delivery.lock:
            delivery.pending_bytes += sum(map(len, records))
        return [f"{record.counter:020d}" for record in written]

    # --- delivery -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                deliveries = list(self._deliveries.values())
            for delivery in deliveries:
                try:
                    self.deliver(delivery.name)
                except Exception as exc:  # noqa: BLE001 - one stream's failure must not stop the others
                    delivery.failure = f"{type(exc).__name__}: {exc}"
                    print(f"firehose: delivery of {delivery.name} failed: {delivery.failure}", file=sys.stderr)

    def deliver(self, name: str, *, force: bool = False) -> int:
        """Deliver the buffer if it is due (or `force`); returns the number of records taken from it."""
        with self._lock:
            delivery = self._deliveries.get(name)
        if delivery is None:
            return 0
        with delivery.lock:
            if delivery.name not in self._deliveries:
                return 0
            batch, positions = self._due(delivery, force)
            if not batch:
                return 0
            self._write(delivery, batch)
            delivery.failure = None
            if delivery.log is not None:
                delivery.delivered = batch[-1].counter
                delivery.pending_bytes = max(0, delivery.pending_bytes - sum(len(r.data) for r in batch))
            else:
                delivery.positions.update(positions)
            self.resources.update(KIND, name, lambda r: r.doc.update(
                _delivered=delivery.delivered, _positions={str(k): v for k, v in delivery.positions.items()}))
            if delivery.log is not None:  # checkpointed: the delivered records' segments can go
                delivery.log.release_through(delivery.delivered)
            return len(batch)

    def _due(self, delivery: _Delivery, force: bool) -> tuple[list[Record], dict[int, int]]:
        """The buffer to deliver now, if it is due: it holds `SizeInMBs` (it is cut there) or its oldest
        record waited `IntervalInSeconds`. Reads one record's worth past the size to tell a full buffer."""
        now_ms = int(self.clock() * 1000)
        limit = delivery.size_limit
        budget = limit + (1 << 20)
        read: list[Record] = []
        if delivery.log is not None:
            if delivery.pending_bytes <= 0 and not force:
                return [], {}
            read = delivery.log.read(0, delivery.delivered, 1_000_000, max_bytes=budget).records
        else:
            for shard in self.streams.shard_numbers(delivery.source):
                room = budget - sum(len(r.data) for r in read)
                if room <= 0:
                    break
                read += self.streams.read_shard(delivery.source, shard, delivery.positions.get(shard, -1), 10_000,
                                                max_bytes=room)
        if not read:
            return [], {}
        full = sum(len(r.data) for r in read) >= limit
        if not (force or full or now_ms - min(r.arrival_ms for r in read) >= delivery.interval * 1000):
            return [], {}
        batch, size = [], 0
        for record in read:
            if batch and size + len(record.data) > limit:
                break
            batch.append(record)
            size += len(record.data)
        positions: dict[int, int] = {}
        for record in batch:  # a shard's records are in counter order
            positions[record.shard] = record.counter
        return batch, positions

    def _write(self, delivery: _Delivery, batch: list[Record]) -> None:
        destination = delivery.destination
        bucket = destination["BucketARN"].removeprefix("arn:aws:s3:::")
        incoming = [encoding.Incoming(f"{r.counter:020d}", r.arrival_ms, r.data) for r in batch]
        oldest = min(r.arrival_ms for r in batch) / 1000
        failures: list[encoding.Failure] = []
        processors = self._processors(destination)
        pairs = [(r, r.data) for r in incoming]
        for function in processors:
            ok, failed = encoding.transform(function, [encoding.Incoming(r.record_id, r.arrival_ms, data)
                                                       for r, data in pairs],
                                            stream_arn=delivery.arn, region=delivery.region)
            pairs, failures = ok, failures + failed
        conversion_failures: list[encoding.Failure] = []
        conversion = destination.get("DataFormatConversionConfiguration")
        if pairs and conversion and conversion.get("Enabled", True):
            schema = conversion["SchemaConfiguration"]
            table = self.catalog.get_table(schema["DatabaseName"], schema["TableName"])
            columns = table["StorageDescriptor"]["Columns"]
            serializer = conversion.get("OutputFormatConfiguration", {}).get("Serializer", {})
            output = "orc" if "OrcSerDe" in serializer else "parquet"
            lines = [data for _r, data in pairs]
            body, bad = encoding.convert(lines, encoding.arrow_schema(columns), output)
            conversion_failures = [encoding.Failure(pairs[i][0], "DataFormatConversion.MalformedData", reason)
                                   for i, reason in bad]
            extension = destination.get("FileExtension", ".parquet" if output == "parquet" else ".orc")
            if len(bad) < len(pairs):
                self._put(bucket, destination["Prefix"], delivery.name, oldest, body, extension)
        elif pairs:
            body, extension = encoding.compress(b"".join(data for _r, data in pairs),
                                                destination["CompressionFormat"])
            self._put(bucket, destination["Prefix"], delivery.name, oldest,
                      body, destination.get("FileExtension", extension))
        now_ms = int(self.clock() * 1000)
        for kind, group in (("processing-failed", failures), ("format-conversion-failed", conversion_failures)):
            if group:
                body = b"".join(encoding.error_document(f, now_ms, lambda_arn=processors[0] if processors and
                                                        kind == "processing-failed" else None) for f in group)
                prefix = layout.render_prefix(destination.get("ErrorOutputPrefix", ""), oldest, error_type=kind)
                self.blobs.put(bucket, prefix + layout.object_name(delivery.name, oldest, ""), [body])

    def _put(self, bucket: str, prefix: str, name: str, oldest: float, body: bytes, extension: str) -> None:
        key = layout.render_prefix(prefix, oldest) + layout.object_name(name, oldest, extension)
        self.blobs.put(bucket, key, [body])

    # --- helpers ------------------------------------------------------------------------------------------
    def _delivery(self, name: str) -> _Delivery:
        with self._lock:
            delivery = self._deliveries.get(name)
            if delivery is not None:
                return delivery
            resource = self.resources.get(KIND, name)
            if resource is None:
                raise self._not_found(name)
            doc = resource.doc
            source = None
            log = None
            if doc["DeliveryStreamType"] == "KinesisStreamAsSource":
                source = doc["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"].rsplit(":stream/")[-1]
            else:
                log = RecordLog(self.folder / name, clock=self.clock, retention_seconds=86400).open()
            delivery = _Delivery(name, resource.arn, doc["_region"], doc["_destination"], source, log,
                                 delivered=doc["_delivered"],
                                 positions={int(k): v for k, v in doc["_positions"].items()})
            if log is not None:
                delivery.pending_bytes = sum(len(r.data) for r in log.read(0, delivery.delivered, 10**9).records)
            self._deliveries[name] = delivery
            return delivery

    def _not_found(self, name: str) -> SagelabError:
        return ResourceNotFoundError(f"Firehose {name} under account {self.account.id} not found.")
