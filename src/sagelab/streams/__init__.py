"""Kinesis Data Streams: shards and hash key ranges, a durable record log per stream, shard iterators."""
