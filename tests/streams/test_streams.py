"""Kinesis Data Streams through real boto3 clients against a real server: shapes, shard math, iterators,
resharding, retention, tags, waiters and bad input, in AWS's own words."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from botocore.exceptions import ClientError

MAX = 2**128 - 1


def _name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def kinesis(server):
    return server.client("kinesis")


@pytest.fixture
def stream(kinesis):
    name = _name()
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def _code(info) -> str:
    return info.value.response["Error"]["Code"]


def _read_all(kinesis, name: str, shard: str, kind: str = "TRIM_HORIZON", **extra) -> list[dict]:
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind,
                                          **extra)["ShardIterator"]
    records = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator)
        records += page["Records"]
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def test_create_describe_list_delete_with_waiters(kinesis):
    name = _name()
    kinesis.create_stream(StreamName=name, ShardCount=3, Tags={"team": "ml"})
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    desc = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE" and desc["RetentionPeriodHours"] == 24
    assert desc["StreamARN"].endswith(f":stream/{name}") and desc["StreamARN"].startswith("arn:aws:kinesis:")
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in desc["Shards"]]
    # AWS's even split of the 128-bit space into three.
    assert ranges == [(0, 113427455640312821154458202477256070484),
                      (113427455640312821154458202477256070485, 226854911280625642308916404954512140969),
                      (226854911280625642308916404954512140970, MAX)]
    assert [s["ShardId"] for s in desc["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    summary = kinesis.describe_stream_summary(StreamARN=desc["StreamARN"])["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "team", "Value": "ml"}]
    listed = kinesis.list_streams()
    assert name in listed["StreamNames"]
    assert any(s["StreamName"] == name for s in listed["StreamSummaries"])
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    with pytest.raises(ClientError) as info:
        kinesis.describe_stream(StreamName=name)
    assert _code(info) == "ResourceNotFoundException"


def test_on_demand_stream_and_duplicate_name(kinesis):
    name = _name()
    kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND" and summary["OpenShardCount"] == 4
    with pytest.raises(ClientError) as info:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert _code(info) == "ResourceInUseException"


def test_partition_keys_route_by_md5_and_sequence_numbers_increase(kinesis, stream):
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    bounds = {s["ShardId"]: (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in shards}
    sent = {}
    for i in range(40):
        key = f"user-{i}"
        answer = kinesis.put_record(StreamName=stream, PartitionKey=key, Data=f"payload-{i}".encode())
        low, high = bounds[answer["ShardId"]]
        assert low <= int.from_bytes(hashlib.md5(key.encode()).digest(), "big") <= high
        sent.setdefault(answer["ShardId"], []).append((answer["SequenceNumber"], f"payload-{i}".encode()))
    assert len(sent) == 2
    for shard, expected in sent.items():
        records = _read_all(kinesis, stream, shard)
        assert [(r["SequenceNumber"], r["Data"]) for r in records] == expected
        numbers = [int(r["SequenceNumber"]) for r in records]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        assert all(len(r["SequenceNumber"]) == 56 for r in records)
    explicit = kinesis.put_record(StreamName=stream, PartitionKey="any", Data=b"x", ExplicitHashKey=str(MAX))
    assert explicit["ShardId"] == "shardId-000000000001"
    odd = kinesis.put_record(StreamName=stream, PartitionKey='clé "quoted" \\', Data=b"\x00\xff")
    last = _read_all(kinesis, stream, odd["ShardId"])[-1]
    assert (last["PartitionKey"], last["Data"]) == ('clé "quoted" \\', b"\x00\xff")


def test_put_records_and_iterator_types(kinesis, stream):
    answer = kinesis.put_records(StreamName=stream, Records=[
        {"PartitionKey": "k", "Data": f"r{i}".encode()} for i in range(10)])
    assert answer["FailedRecordCount"] == 0 and len(answer["Records"]) == 10
    shard = answer["Records"][0]["ShardId"]
    sequences = [r["SequenceNumber"] for r in answer["Records"]]
    assert [r["Data"] for r in _read_all(kinesis, stream, shard)] == [f"r{i}".encode() for i in range(10)]
    at = _read_all(kinesis, stream, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=sequences[3])
    assert at[0]["SequenceNumber"] == sequences[3] and len(at) == 7
    after = _read_all(kinesis, stream, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=sequences[3])
    assert after[0]["SequenceNumber"] == sequences[4]
    latest = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="LATEST")
    page = kinesis.get_records(ShardIterator=latest["ShardIterator"])
    assert page["Records"] == [] and page["MillisBehindLatest"] == 0
    kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"new")
    page = kinesis.get_records(ShardIterator=page["NextShardIterator"])
    assert [r["Data"] for r in page["Records"]] == [b"new"]
    arrival = page["Records"][0]["ApproximateArrivalTimestamp"]
    by_time = _read_all(kinesis, stream, shard, "AT_TIMESTAMP", Timestamp=arrival)
    assert [r["Data"] for r in by_time][-1] == b"new"
    future = _read_all(kinesis, stream, shard, "AT_TIMESTAMP", Timestamp=time.time() + 3600)
    assert future == []
    limited = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"], Limit=4)
    assert len(limited["Records"]) == 4 and limited["MillisBehindLatest"] >= 0


def test_bad_input_is_answered_in_kinesis_codes(kinesis, stream):
    with pytest.raises(ClientError) as info:
        kinesis.put_record(StreamName="no-such-stream", PartitionKey="k", Data=b"x")
    assert _code(info) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"x" * (1024 * 1024 + 1))
    assert _code(info) == "ValidationException" and "1 MiB" in str(info.value)
    with pytest.raises(ClientError) as info:
        kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": "k", "Data": b"x"}] * 501)
    assert _code(info) == "ValidationException" and "500" in str(info.value)
    with pytest.raises(ClientError) as info:
        kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": "k", "Data": b"x" * 1_000_000}] * 6)
    assert _code(info) == "ValidationException" and "5 MiB" in str(info.value)
    with pytest.raises(ClientError) as info:
        kinesis.get_records(ShardIterator="not-an-iterator")
    assert _code(info) == "InvalidArgumentException"
    with pytest.raises(ClientError) as info:
        kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000009",
                                   ShardIteratorType="TRIM_HORIZON")
    assert _code(info) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"x", ExplicitHashKey=str(2**128))
    assert _code(info) == "InvalidArgumentException"


def test_split_and_merge_keep_parents_and_ranges(kinesis, stream):
    before = kinesis.put_record(StreamName=stream, PartitionKey="a", Data=b"before", ExplicitHashKey="5")
    assert before["ShardId"] == "shardId-000000000000"
    middle = str(2**126)
    kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=middle)
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream)["Shards"]}
    parent = shards["shardId-000000000000"]
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    left, right = shards["shardId-000000000002"], shards["shardId-000000000003"]
    assert left["ParentShardId"] == right["ParentShardId"] == "shardId-000000000000"
    assert (left["HashKeyRange"]["StartingHashKey"], left["HashKeyRange"]["EndingHashKey"]) == (
        "0", str(2**126 - 1))
    assert right["HashKeyRange"]["StartingHashKey"] == middle
    after = kinesis.put_record(StreamName=stream, PartitionKey="a", Data=b"after", ExplicitHashKey="5")
    assert after["ShardId"] == "shardId-000000000002"
    # The closed parent is read to its end, then its iterator ends: NextShardIterator is absent.
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = kinesis.get_records(ShardIterator=iterator)
    assert [r["Data"] for r in page["Records"]] == [b"before"] and "NextShardIterator" not in page
    kinesis.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000002",
                         AdjacentShardToMerge="shardId-000000000003")
    merged = kinesis.list_shards(StreamName=stream, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    by_id = {s["ShardId"]: s for s in merged}
    child = by_id["shardId-000000000004"]
    assert child["ParentShardId"] == "shardId-000000000002"
    assert child["AdjacentParentShardId"] == "shardId-000000000003"
    assert child["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)}
    with pytest.raises(ClientError) as info:
        kinesis.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000004",
                             AdjacentShardToMerge="shardId-000000000004")
    assert _code(info) == "InvalidArgumentException"


def test_update_shard_count_and_list_shards_pagination(kinesis, stream):
    answer = kinesis.update_shard_count(StreamName=stream, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert (answer["CurrentShardCount"], answer["TargetShardCount"]) == (2, 4)
    open_shards = kinesis.list_shards(StreamName=stream, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert len(open_shards) == 4
    assert open_shards[0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert open_shards[-1]["HashKeyRange"]["EndingHashKey"] == str(MAX)
    assert all("ParentShardId" in s for s in open_shards)
    first = kinesis.list_shards(StreamName=stream, MaxResults=4)
    assert len(first["Shards"]) == 4 and "NextToken" in first
    rest = kinesis.list_shards(NextToken=first["NextToken"])
    assert [s["ShardId"] for s in first["Shards"] + rest["Shards"]] == [f"shardId-00000000000{i}" for i in range(6)]
    after = kinesis.list_shards(StreamName=stream, ShardFilter={"Type": "AFTER_SHARD_ID",
                                                                 "ShardId": "shardId-000000000003"})
    assert [s["ShardId"] for s in after["Shards"]] == ["shardId-000000000004", "shardId-000000000005"]
    paginator = kinesis.get_paginator("list_shards")
    assert sum(len(p["Shards"]) for p in paginator.paginate(StreamName=stream, PaginationConfig={
        "PageSize": 2})) == 6
    with pytest.raises(ClientError) as info:
        kinesis.update_shard_count(StreamName=stream, TargetShardCount=9, ScalingType="UNIFORM_SCALING")
    assert _code(info) == "InvalidArgumentException"


def test_retention_and_tags(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    assert kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "RetentionPeriodHours"] == 48
    with pytest.raises(ClientError) as info:
        kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=72)
    assert _code(info) == "InvalidArgumentException"
    kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=24)
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"b": "2", "a": "1"})
    assert kinesis.list_tags_for_stream(StreamName=stream)["Tags"] == [{"Key": "a", "Value": "1"},
                                                                      {"Key": "b", "Value": "2"}]
    kinesis.remove_tags_from_stream(StreamName=stream, TagKeys=["a"])
    assert [t["Key"] for t in kinesis.list_tags_for_stream(StreamName=stream)["Tags"]] == ["b"]


def test_shard_write_limits_only_when_the_setting_asks(tmp_path):
    from sagelab.embedded import ServerProcess

    server = ServerProcess(tmp_path / "home", env={"SAGELAB_KINESIS_SHARD_LIMITS": "true"}).start()
    try:
        kinesis = server.client("kinesis")
        kinesis.create_stream(StreamName="limited", ShardCount=2)
        # Five 300 KB records for one shard in one call: the shard takes 1 MiB per second, so three fit.
        answer = kinesis.put_records(StreamName="limited", Records=[
            {"PartitionKey": "same", "Data": b"x" * 300_000} for _ in range(5)])
        assert answer["FailedRecordCount"] == 2
        assert [r.get("ErrorCode") for r in answer["Records"]] == [
            None, None, None, "ProvisionedThroughputExceededException", "ProvisionedThroughputExceededException"]
        assert "Rate exceeded for shard" in answer["Records"][3]["ErrorMessage"]
        assert all("SequenceNumber" in r for r in answer["Records"][:3])
    finally:
        server.stop()


def test_without_the_setting_no_write_limit_applies(kinesis, stream):
    answer = kinesis.put_records(StreamName=stream, Records=[
        {"PartitionKey": "same", "Data": b"x" * 300_000} for _ in range(5)])
    assert answer["FailedRecordCount"] == 0
