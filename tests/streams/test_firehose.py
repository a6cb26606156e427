"""Firehose through real boto3 clients: buffering by interval and by size, the prefix layouts, GZIP, the
Python transformation hook with AWS's recordId/result/data contract, JSON -> Parquet and ORC with a Glue
table's schema, a Kinesis stream as source, bad input, and acknowledged records surviving kill -9."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import textwrap
import time
import uuid

import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from sagelab.embedded import ServerProcess
from sagelab.firehose import snappy_frames

ROLE = "arn:aws:iam::000000000000:role/firehose"
HOOK = textwrap.dedent('''
    import base64


    def handler(event, context):
        out = []
        for record in event["records"]:
            text = base64.b64decode(record["data"]).decode()
            if text.startswith("drop"):
                out.append({"recordId": record["recordId"], "result": "Dropped", "data": record["data"]})
            elif text.startswith("fail"):
                out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
            else:
                data = base64.b64encode(text.upper().encode()).decode()
                out.append({"recordId": record["recordId"], "result": "Ok", "data": data})
        return {"records": out}
''')


def _env(hooks) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture(scope="module")
def hooks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hooks")
    (folder / "firehose_hooks.py").write_text(HOOK)
    return folder


@pytest.fixture(scope="module")
def fh_server(tmp_path_factory, hooks):
    server = ServerProcess(tmp_path_factory.mktemp("firehose-home"), env=_env(hooks)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clients(fh_server):
    return {name: fh_server.client(name) for name in ("firehose", "s3", "kinesis", "glue")}


@pytest.fixture
def bucket(clients):
    name = f"lake-{uuid.uuid4().hex[:10]}"
    clients["s3"].create_bucket(Bucket=name)
    return name


def _create(clients, bucket: str, **destination) -> str:
    name = f"fh-{uuid.uuid4().hex[:8]}"
    config = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
              "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}, **destination}
    clients["firehose"].create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=config)
    return name


def _objects(s3, bucket: str, prefix: str = "", count: int = 1, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        if len(keys) >= count or time.monotonic() > deadline:
            return sorted(keys)
        time.sleep(0.1)


def _read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_interval_delivery_with_the_default_hour_layout(clients, bucket):
    name = _create(clients, bucket, Prefix="events/")
    desc = clients["firehose"].describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["DeliveryStreamStatus"] == "ACTIVE" and desc["DeliveryStreamType"] == "DirectPut"
    s3_desc = desc["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3_desc["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
    assert name in clients["firehose"].list_delivery_streams()["DeliveryStreamNames"]
    clients["firehose"].put_record(DeliveryStreamName=name, Record={"Data": b"first\n"})
    answer = clients["firehose"].put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": f"line {i}\n".encode()} for i in range(5)])
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 5
    [key] = _objects(clients["s3"], bucket, "events/")
    hour = time.strftime("%Y/%m/%d/%H/", time.gmtime())
    assert key.startswith("events/" + hour[:11]) and key.split("/")[-1].startswith(f"{name}-1-")
    assert _read(clients["s3"], bucket, key) == b"first\n" + b"".join(f"line {i}\n".encode() for i in range(5))
    clients["firehose"].delete_delivery_stream(DeliveryStreamName=name)
    with pytest.raises(ClientError) as info:
        clients["firehose"].describe_delivery_stream(DeliveryStreamName=name)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_size_comes_before_the_interval_and_gzip_with_timestamp_prefix(clients, bucket):
    name = _create(clients, bucket, Prefix="sized/!{timestamp:yyyy}/", ErrorOutputPrefix="errors/",
                   CompressionFormat="GZIP", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    chunk = b"x" * 1000 + b"\n"
    for _ in range(3):
        clients["firehose"].put_record_batch(DeliveryStreamName=name, Records=[{"Data": chunk}] * 400)
    keys = _objects(clients["s3"], bucket, "sized/")
    assert len(keys) == 1, "1 MiB buffered: one object, long before the 900 s interval"
    assert keys[0].startswith(f"sized/{time.gmtime().tm_year}/{name}-1-") and keys[0].endswith(".gz")
    delivered = gzip.decompress(_read(clients["s3"], bucket, keys[0]))
    assert (1 << 20) - 1001 < len(delivered) <= 1 << 20  # cut at SizeInMBs, on a record boundary
    assert set(delivered.split(b"\n")[:-1]) == {b"x" * 1000}


def test_snappy_objects_are_in_the_framing_format(clients, bucket):
    name = _create(clients, bucket, Prefix="snappy/", CompressionFormat="Snappy")
    lines = [f"event {i} {'y' * (i % 50)}\n".encode() for i in range(3000)]
    clients["firehose"].put_record_batch(DeliveryStreamName=name, Records=[{"Data": x} for x in lines[:500]])
    clients["firehose"].put_record_batch(DeliveryStreamName=name, Records=[{"Data": x} for x in lines[500:1000]])
    [key] = _objects(clients["s3"], bucket, "snappy/")
    body = _read(clients["s3"], bucket, key)
    assert key.endswith(".snappy") and body.startswith(snappy_frames.STREAM_IDENTIFIER)
    assert snappy_frames.decompress(body) == b"".join(lines[:1000])
    assert snappy_frames.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_transformation_hook_ok_dropped_and_processing_failed(clients, bucket):
    name = _create(clients, bucket, Prefix="t/", ErrorOutputPrefix="err/!{firehose:error-output-type}/",
                   ProcessingConfiguration={"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
                       {"ParameterName": "LambdaArn", "ParameterValue": "python:firehose_hooks:handler"}]}]})
    clients["firehose"].put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": b"keep me\n"}, {"Data": b"drop me\n"}, {"Data": b"fail me\n"}, {"Data": b"keep too\n"}])
    [key] = _objects(clients["s3"], bucket, "t/")
    assert _read(clients["s3"], bucket, key) == b"KEEP ME\nKEEP TOO\n"
    [error_key] = _objects(clients["s3"], bucket, "err/processing-failed/")
    [failure] = [json.loads(line) for line in _read(clients["s3"], bucket, error_key).splitlines()]
    assert failure["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert base64.b64decode(failure["rawData"]) == b"fail me\n"
    assert failure["lambdaArn"] == "python:firehose_hooks:handler"
    with pytest.raises(ClientError) as info:
        _create(clients, bucket, ProcessingConfiguration={"Enabled": True, "Processors": [{
            "Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn",
                                              "ParameterValue": "arn:aws:lambda:us-east-1:1:function:f"}]}]})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "python:<module>:<function>" in str(info.value)


@pytest.mark.parametrize("output", ["parquet", "orc"])
def test_json_is_converted_with_the_glue_tables_schema(clients, bucket, output):
    database = f"db_{uuid.uuid4().hex[:8]}"
    clients["glue"].create_database(DatabaseInput={"Name": database})
    clients["glue"].create_table(DatabaseName=database, TableInput={"Name": "clicks", "StorageDescriptor": {
        "Columns": [{"Name": "user", "Type": "string"}, {"Name": "clicks", "Type": "bigint"},
                    {"Name": "score", "Type": "double"}], "Location": f"s3://{bucket}/conv/"}})
    serializer = {"ParquetSerDe": {}} if output == "parquet" else {"OrcSerDe": {}}
    name = _create(clients, bucket, Prefix="conv/", ErrorOutputPrefix="bad/", DataFormatConversionConfiguration={
        "Enabled": True, "SchemaConfiguration": {"DatabaseName": database, "TableName": "clicks", "RoleARN": ROLE},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": serializer}})
    rows = [{"user": f"u{i}", "Clicks": i, "score": i / 2} for i in range(20)]
    clients["firehose"].put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": json.dumps(r).encode() + b"\n"} for r in rows] + [{"Data": b"not json\n"}])
    [key] = _objects(clients["s3"], bucket, "conv/")
    body = _read(clients["s3"], bucket, key)
    table = pq.read_table(io.BytesIO(body)) if output == "parquet" else orc.read_table(io.BytesIO(body))
    assert table.column_names == ["user", "clicks", "score"]
    assert table.column("clicks").to_pylist() == list(range(20))
    [bad_key] = _objects(clients["s3"], bucket, "bad/")
    [bad] = [json.loads(line) for line in _read(clients["s3"], bucket, bad_key).splitlines()]
    assert bad["errorCode"].startswith("DataFormatConversion.") and base64.b64decode(bad["rawData"]) == b"not json\n"


def test_kinesis_stream_as_source(clients, bucket):
    stream = f"src-{uuid.uuid4().hex[:8]}"
    clients["kinesis"].create_stream(StreamName=stream, ShardCount=2)
    arn = clients["kinesis"].describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    name = f"fh-{uuid.uuid4().hex[:8]}"
    clients["firehose"].create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
                                            "Prefix": "from-kinesis/",
                                            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})
    desc = clients["firehose"].describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert desc["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn
    clients["kinesis"].put_records(StreamName=stream, Records=[
        {"PartitionKey": f"k{i}", "Data": f"{i}\n".encode()} for i in range(50)])
    keys = _objects(clients["s3"], bucket, "from-kinesis/")
    assert keys
    time.sleep(1.5)
    keys = _objects(clients["s3"], bucket, "from-kinesis/")
    lines = b"".join(_read(clients["s3"], bucket, k) for k in keys).split()
    assert sorted(int(x) for x in lines) == list(range(50))
    with pytest.raises(ClientError) as info:
        clients["firehose"].put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert info.value.response["Error"]["Code"] == "InvalidArgumentException"


def test_bad_input(clients, bucket):
    with pytest.raises(ClientError) as info:
        clients["firehose"].put_record(DeliveryStreamName="missing", Record={"Data": b"x"})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    name = _create(clients, bucket)
    with pytest.raises(ClientError) as info:
        clients["firehose"].put_record(DeliveryStreamName=name, Record={"Data": b"x" * (1000 * 1024 + 1)})
    assert info.value.response["Error"]["Code"] == "ValidationException" and "1,000 KiB" in str(info.value)
    with pytest.raises(ClientError) as info:
        _create(clients, bucket, Prefix="p/!{timestamp:yyyy}/")
    assert info.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert "ErrorOutputPrefix" in str(info.value)


@pytest.mark.slow
def test_acknowledged_records_are_delivered_after_kill_9(tmp_path, hooks):
    home = tmp_path / "home"
    first = ServerProcess(home, env=_env(hooks)).start()
    try:
        s3, firehose = first.client("s3"), first.client("firehose")
        s3.create_bucket(Bucket="crash")
        firehose.create_delivery_stream(DeliveryStreamName="crash", ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::crash",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 3}})
        for i in range(20):
            firehose.put_record_batch(DeliveryStreamName="crash", Records=[
                {"Data": f"{i}-{j}\n".encode()} for j in range(10)])
    finally:
        first.kill()  # before the 3 s interval: nothing delivered yet, all of it acknowledged
    second = ServerProcess(home, env=_env(hooks)).start()
    try:
        s3 = second.client("s3")
        keys = _objects(s3, "crash", count=1)
        delivered = b"".join(_read(s3, "crash", k) for k in keys).split()
        assert sorted(delivered) == sorted(f"{i}-{j}".encode() for i in range(20) for j in range(10))
    finally:
        second.stop()
