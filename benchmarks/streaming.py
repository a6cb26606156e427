"""Kinesis ingestion with fsync on: acknowledged records per second through PutRecords, against bare fsync
loops writing the same bytes to the same disk in the same run, and GetRecords of 10,000 records.

Run: .venv/bin/python benchmarks/streaming.py [--duration 10] [--connections 16] [--batch 500]

sagelab: a 10-shard stream; wrk (`-t1 -c16`) replays one PutRecords request of `--batch` records of 1 KiB
(distinct partition keys, so every shard is written), signed once with botocore's SigV4Auth (a signature
stays valid for 15 minutes). Every 200 answer means its records were fsynced, so acknowledged records/s is
requests/s x batch. The stream is then read back and must hold at least that many records.

The bare loops append the same record frames (the log's bytes) to a file beside the server's home:
  - per record: write one record, fsync, repeat: what a log without group commit does for each record;
  - per request: write one request's records, fsync, repeat: one PutRecords' worth per fsync, from one
    thread with no HTTP, parsing or signing at all.
The ratio the target names (>= 0.5) is sagelab over the per-record loop; the per-request ratio is printed too.

The bare loops run before and after the server's load; their mean is the baseline (other work on a shared
machine moves fsync times by an order of magnitude within minutes).

GetRecords: 10,000 records of 1 KiB read from one shard with Limit=10000, two ways: through a signed HTTP
request (urllib; no boto3 parsing), from sending to the last byte; and as server time, the Kinesis face's
resolve + answer (validation, iterator, log read, rendering; no HTTP) run in this process on the server's
home after the server has stopped.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from serving import check_once, lua_script, run_wrk, signed_headers

from sagelab.api.http import Request
from sagelab.api.kinesis import KinesisFace
from sagelab.embedded import ServerProcess
from sagelab.platform import Platform
from sagelab.settings import load_settings
from sagelab.streams.record_log import Record, encode_frame

STREAM = "bench"
RECORD_BYTES = 1024
TARGET = "Kinesis_20131202."


def kinesis_headers(operation: str) -> dict[str, str]:
    return {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation}


def put_records_body(batch: int, salt: str) -> bytes:
    data = base64.b64encode(os.urandom(RECORD_BYTES)).decode()
    return json.dumps({"StreamName": STREAM, "Records": [
        {"PartitionKey": f"{salt}-{i}", "Data": data} for i in range(batch)]}).encode()


def bare_loop(path: Path, frames: list[bytes], per_fsync: int, seconds: float) -> float:
    """Records/s of appending `frames` and fsyncing after every `per_fsync` of them, for `seconds`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunks = [b"".join(frames[i:i + per_fsync]) for i in range(0, len(frames), per_fsync)]
    written = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            for chunk in chunks:
                os.write(fd, chunk)
                os.fsync(fd)
                written += per_fsync
    finally:
        os.close(fd)
        elapsed = time.perf_counter() - started
        path.unlink()
    return written / elapsed


def signed_call(server: ServerProcess, operation: str, payload: dict) -> tuple[dict, float]:
    body = json.dumps(payload).encode()
    headers = signed_headers(server, "/", body, service="kinesis", headers=kinesis_headers(operation))
    started = time.perf_counter()
    answer = check_once(server.url + "/", headers, body)
    return json.loads(answer), time.perf_counter() - started


def face_get_records_seconds(home: Path, stream: str, runs: int = 5) -> list[float]:
    """What the server spends answering GetRecords(Limit=10000), measured in this process on its home."""
    platform = Platform(load_settings({"home": str(home)}, environ={})).open()
    face = KinesisFace(platform)

    def call(operation: str, payload: dict) -> tuple[bytes, float]:
        request = Request(method="POST", raw_path="/", raw_query="", body=json.dumps(payload).encode(),
                          headers={"x-amz-target": TARGET + operation}, request_id="bench")
        started = time.perf_counter()
        body = face.answer(face.resolve(request), request).body
        return body, time.perf_counter() - started

    try:
        times = []
        for _ in range(runs):
            iterator = json.loads(call("GetShardIterator", {
                "StreamName": stream, "ShardId": "shardId-000000000000",
                "ShardIteratorType": "TRIM_HORIZON"})[0])["ShardIterator"]
            body, seconds = call("GetRecords", {"ShardIterator": iterator, "Limit": 10_000})
            if body.count(b'"SequenceNumber"') != 10_000:
                raise SystemExit("GetRecords in process did not return 10000 records")
            times.append(seconds)
        return times
    finally:
        platform.close()


def read_everything(client) -> int:
    total = 0
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            total += len(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    print(f"PutRecords of {args.batch} x {RECORD_BYTES} B records, wrk -t1 -c{args.connections}, "
          f"{args.warmup} s warm-up + {args.duration} s; {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp_name:
        tmp = Path(tmp_name)
        frames = [encode_frame(Record(i, i % 10, 0, f"k-{i}", os.urandom(RECORD_BYTES)))
                  for i in range(args.batch)]
        seconds = min(args.duration, 5)
        per_record = [bare_loop(tmp / "bare.log", frames, 1, seconds)]
        per_request = [bare_loop(tmp / "bare.log", frames, args.batch, seconds)]
        server = ServerProcess(tmp / "home").start()
        try:
            client = server.client("kinesis")
            client.create_stream(StreamName=STREAM, ShardCount=10)
            body = put_records_body(args.batch, "k")
            headers = signed_headers(server, "/", body, service="kinesis", headers=kinesis_headers("PutRecords"))
            answer = json.loads(check_once(server.url + "/", headers, body))
            if answer["FailedRecordCount"] or len(answer["Records"]) != args.batch:
                raise SystemExit(f"PutRecords answered {answer}")
            shards_written = len({r["ShardId"] for r in answer["Records"]})
            script = lua_script(tmp / "put.lua", "/", headers, body)
            url = server.url + "/"
            warm, _, _ = run_wrk(url, script, args.warmup, args.connections)
            result, output, cores = run_wrk(url, script, args.duration, args.connections,
                                            {"server": [server.process.pid]})
            for r in (warm, result):
                if r["non2xx"] or r["socket_errors"]:
                    print(output)
                    raise SystemExit(f"{r['non2xx']} non-2xx responses, {r['socket_errors']} socket errors")
            acknowledged = result["rps"] * args.batch
            sent = (1 + warm["requests"] + result["requests"]) * args.batch
            stored = read_everything(client)
            if stored < sent:
                raise SystemExit(f"the stream holds {stored} records, fewer than the {sent} acknowledged")

            # GetRecords of 10,000 records from one shard, through a signed request.
            client.create_stream(StreamName=STREAM + "-read", ShardCount=1)
            one_shard = json.loads(put_records_body(500, "r"))["Records"]
            for _ in range(20):
                client.put_records(StreamName=STREAM + "-read", Records=[
                    {"PartitionKey": r["PartitionKey"], "Data": base64.b64decode(r["Data"])} for r in one_shard])
            iterator_of = {"StreamName": STREAM + "-read", "ShardId": "shardId-000000000000",
                           "ShardIteratorType": "TRIM_HORIZON"}
            timings = []
            for _ in range(5):
                iterator = signed_call(server, "GetShardIterator", iterator_of)[0]["ShardIterator"]
                page, seconds = signed_call(server, "GetRecords", {"ShardIterator": iterator, "Limit": 10_000})
                if len(page["Records"]) != 10_000:
                    raise SystemExit(f"GetRecords returned {len(page['Records'])} records, expected 10000")
                timings.append(seconds)
        finally:
            server.stop()

        server_times = face_get_records_seconds(tmp / "home", STREAM + "-read")
        per_record.append(bare_loop(tmp / "bare.log", frames, 1, seconds))
        per_request.append(bare_loop(tmp / "bare.log", frames, args.batch, seconds))

    print(f"sagelab PutRecords: {result['rps']:.1f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms; "
          f"{shards_written} shards written; server CPU {cores['server']:.2f} cores, other processes "
          f"{cores['other processes']:.2f}; {stored} records read back for {sent} acknowledged")
    print(f"acknowledged records/s (fsync on):  {acknowledged:10.0f}   (target >= 10000)")
    print(f"bare loop, fsync per record:        {statistics.mean(per_record):10.0f} records/s "
          f"(before {per_record[0]:.0f}, after {per_record[1]:.0f})")
    print(f"bare loop, fsync per {args.batch}-record request: {statistics.mean(per_request):10.0f} records/s "
          f"(before {per_request[0]:.0f}, after {per_request[1]:.0f})")
    print(f"GetRecords of 10,000 records: server time median {statistics.median(server_times) * 1e3:.1f} ms, best "
          f"{min(server_times) * 1e3:.1f} ms (target < 100 ms); round trip over HTTP median "
          f"{statistics.median(timings) * 1e3:.1f} ms, best {min(timings) * 1e3:.1f} ms")
    print(f"ratio sagelab / bare per-request fsync loop: {acknowledged / statistics.mean(per_request):.3f}")
    print(f"ratio sagelab / bare per-record fsync loop:  {acknowledged / statistics.mean(per_record):.3f} "
          "(target >= 0.5)")


if __name__ == "__main__":
    main()
