"""Every PutRecord(s) answered 200 survives kill -9 of the server: after a restart each acknowledged record
is readable, with the sequence number it was given, in order, and no record appears twice."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sagelab.embedded import ServerProcess

WRITERS = 8
BATCH = 25
#: No retries: a retried PutRecords whose first answer was lost would write its records twice (as on AWS).
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def _write(server: ServerProcess, writer: int, acknowledged: list, stop: threading.Event) -> None:
    client = server.client("kinesis", config=NO_RETRIES)
    batch_number = 0
    while not stop.is_set():
        records = [{"PartitionKey": f"writer-{writer}", "Data": f"{writer}:{batch_number}:{i}".encode()}
                   for i in range(BATCH)]
        try:
            answer = client.put_records(StreamName="durable", Records=records)
        except (BotoCoreError, ClientError):
            return  # the server is gone: this batch was never acknowledged
        assert answer["FailedRecordCount"] == 0
        for record, result in zip(records, answer["Records"], strict=True):
            acknowledged.append((record["Data"], result["ShardId"], result["SequenceNumber"]))
        batch_number += 1


def _read_shard(client, shard: str) -> list[dict]:
    iterator = client.get_shard_iterator(StreamName="durable", ShardId=shard,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict] = []
    while True:
        page = client.get_records(ShardIterator=iterator)
        records += page["Records"]
        if not page["Records"] or page["MillisBehindLatest"] == 0 and len(page["Records"]) < 10_000:
            return records
        iterator = page["NextShardIterator"]


@pytest.mark.slow
def test_acknowledged_records_survive_kill_9_under_concurrent_writers(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    acknowledged: list[list] = [[] for _ in range(WRITERS)]
    stop = threading.Event()
    try:
        first.client("kinesis").create_stream(StreamName="durable", ShardCount=4)
        writers = [threading.Thread(target=_write, args=(first, w, acknowledged[w], stop)) for w in range(WRITERS)]
        for thread in writers:
            thread.start()
        deadline = time.monotonic() + 60
        while sum(map(len, acknowledged)) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        first.kill()  # SIGKILL while the writers are mid-request
        stop.set()
    for thread in writers:
        thread.join(60)
    total = sum(map(len, acknowledged))
    assert total >= 2000

    second = ServerProcess(home).start()
    try:
        client = second.client("kinesis")
        shards = [s["ShardId"] for s in client.list_shards(StreamName="durable")["Shards"]]
        stored = {shard: _read_shard(client, shard) for shard in shards}
    finally:
        second.stop()
    found = {r["Data"]: (shard, r["SequenceNumber"]) for shard, records in stored.items() for r in records}
    assert len(found) == sum(map(len, stored.values())), "a record was stored twice"
    for writer_records in acknowledged:
        for data, shard, sequence in writer_records:
            assert found.get(data) == (shard, sequence), f"acknowledged record {data!r} was lost or moved"
    for shard, records in stored.items():
        numbers = [int(r["SequenceNumber"]) for r in records]
        assert numbers == sorted(numbers), f"{shard} is out of order"
        for writer in range(WRITERS):  # each writer's records, in the order it sent them
            mine = [tuple(map(int, r["Data"].split(b":")[1:])) for r in records
                    if r["Data"].startswith(f"{writer}:".encode())]
            assert mine == sorted(mine)


@pytest.mark.slow
def test_shards_iterators_and_sequence_numbers_carry_across_a_restart(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        kinesis = first.client("kinesis")
        kinesis.create_stream(StreamName="kept", ShardCount=1)
        kinesis.split_shard(StreamName="kept", ShardToSplit="shardId-000000000000",
                            NewStartingHashKey=str(2**127))
        before = kinesis.put_record(StreamName="kept", PartitionKey="k", Data=b"before", ExplicitHashKey="1")
        iterator = kinesis.get_shard_iterator(StreamName="kept", ShardId=before["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        shards = kinesis.list_shards(StreamName="kept")["Shards"]
    finally:
        first.kill()
    second = ServerProcess(home).start()
    try:
        kinesis = second.client("kinesis")
        assert kinesis.list_shards(StreamName="kept")["Shards"] == shards
        page = kinesis.get_records(ShardIterator=iterator)  # an iterator issued before the crash still reads
        assert [r["Data"] for r in page["Records"]] == [b"before"]
        after = kinesis.put_record(StreamName="kept", PartitionKey="k", Data=b"after", ExplicitHashKey="1")
        assert after["ShardId"] == before["ShardId"]
        assert int(after["SequenceNumber"]) > int(before["SequenceNumber"])
        page = kinesis.get_records(ShardIterator=page["NextShardIterator"])
        assert [r["Data"] for r in page["Records"]] == [b"after"]
    finally:
        second.stop()
