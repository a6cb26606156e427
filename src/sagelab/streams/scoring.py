"""Streaming predictions: score a Kinesis stream against a SageMaker endpoint as records arrive.

`StreamScorer` is a small consumer that works through the AWS APIs only (a boto3 `kinesis` client and a
`sagemaker-runtime` client), so the same code scores a stream on sagelab or on AWS. Each pass reads what is
new on every shard, sends the records to the endpoint in batches of up to `batch_size` (one CSV or JSON
Lines row per record, joined with newlines, one InvokeEndpoint call per batch), and writes one record per
score to the output stream: `{"sequenceNumber", "shardId", "score"}` as JSON, under the input record's
partition key, so a key's scores stay in order on one shard.

Positions are kept in memory: a scorer that restarts begins again at `start` (TRIM_HORIZON or LATEST).
Shards closed by resharding are read to their end and then left.

    scorer = StreamScorer(kinesis=kinesis, runtime=runtime, endpoint="churn", input_stream="events",
                          output_stream="scores")
    scorer.run(stop_event)      # or scorer.run_once() from a loop of your own
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any


def _lines(body: bytes) -> list[str]:
    return [line for line in body.decode().splitlines() if line.strip()]


class StreamScorer:
    def __init__(self, *, kinesis: Any, runtime: Any, endpoint: str, input_stream: str, output_stream: str,
                 content_type: str = "text/csv", accept: str = "text/csv", batch_size: int = 100,
                 start: str = "TRIM_HORIZON", parse: Callable[[bytes], list[str]] = _lines):
        if not 1 <= batch_size <= 500:
            raise ValueError(f"batch_size {batch_size} must be between 1 and 500 (one PutRecords of scores).")
        self.kinesis, self.runtime = kinesis, runtime
        self.endpoint, self.input_stream, self.output_stream = endpoint, input_stream, output_stream
        self.content_type, self.accept, self.batch_size, self.start = content_type, accept, batch_size, start
        self.parse = parse
        self._iterators: dict[str, str | None] = {}

    def run(self, stop: threading.Event, poll_seconds: float = 0.2) -> None:
        while not stop.is_set():
            if not self.run_once():
                stop.wait(poll_seconds)

    def run_once(self) -> int:
        """Score everything new on every shard once; returns how many records were scored."""
        scored = 0
        for shard in self._shards():
            if shard not in self._iterators:
                self._iterators[shard] = self.kinesis.get_shard_iterator(
                    StreamName=self.input_stream, ShardId=shard, ShardIteratorType=self.start)["ShardIterator"]
            iterator = self._iterators[shard]
            while iterator:
                page = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                records = page["Records"]
                for i in range(0, len(records), self.batch_size):
                    scored += self._score(shard, records[i:i + self.batch_size])
                iterator = page.get("NextShardIterator")
                self._iterators[shard] = iterator
                if not records or not page.get("MillisBehindLatest"):
                    break
        return scored

    def _shards(self) -> list[str]:
        shards, token = [], None
        while True:
            page = (self.kinesis.list_shards(NextToken=token) if token
                    else self.kinesis.list_shards(StreamName=self.input_stream))
            shards += [s["ShardId"] for s in page["Shards"]]
            token = page.get("NextToken")
            if not token:
                return shards

    def _score(self, shard: str, records: list[dict[str, Any]]) -> int:
        body = b"\n".join(r["Data"].rstrip(b"\n") for r in records)
        answer = self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType=self.content_type,
                                              Accept=self.accept, Body=body)
        scores = self.parse(answer["Body"].read())
        if len(scores) != len(records):
            raise RuntimeError(f"Endpoint {self.endpoint} answered {len(scores)} scores for {len(records)} "
                               "records: the scorer expects one line per record.")
        entries = [{"PartitionKey": r["PartitionKey"], "Data": json.dumps({
            "sequenceNumber": r["SequenceNumber"], "shardId": shard, "score": score}).encode()}
            for r, score in zip(records, scores, strict=True)]
        pending = entries
        while pending:  # PutRecords reports failures per record: send the failed ones again
            answer = self.kinesis.put_records(StreamName=self.output_stream, Records=pending)
            pending = [e for e, result in zip(pending, answer["Records"], strict=True) if "ErrorCode" in result]
        return len(records)
