"""A stream's records, durable before they are acknowledged: append-only segment files, group-committed.

Each record is written as `<length:u32><crc32:u32><payload>`, the payload being
`<counter:u64><arrival ms:i64><shard:u32><key length:u16><partition key><data>`. Appenders hand their records
to one writer thread and wait; the writer takes everything queued since its last round, writes it with one
`write` and one `fsync`, and only then publishes the records to readers and releases the appenders. Many
concurrent PutRecord(s) calls thus share one fsync, and no record is answered, or read, before it is on disk.

Opening a log scans its segments and rebuilds the in-memory index (counters, arrival times and file offsets
per shard); a torn or corrupt tail, what a crash mid-write leaves, is cut off. Records older than the
retention period are dropped from the index, and a segment whose every record has expired is deleted.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import shutil
import struct
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from sagelab.errors import InternalError

_FRAME = struct.Struct("<II")
_HEADER = struct.Struct("<QqIH")
_FRAME_AND_HEADER = struct.Struct("<IIQqIH")
#: A new segment is started once the current one is this large.
SEGMENT_BYTES = 64 << 20
_SUFFIX = ".seg"


class Record(NamedTuple):
    """One record as stored (a tuple: GetRecords builds ten thousand of them per call)."""

    counter: int
    shard: int
    arrival_ms: int
    partition_key: str
    data: bytes


class _ShardIndex:
    """Where one shard's records are, in counter order, as parallel arrays (small, and bisectable)."""

    def __init__(self) -> None:
        self.counters = array("q")
        self.arrivals = array("q")
        self.segments = array("q")
        self.offsets = array("q")
        self.lengths = array("l")

    def add(self, counter: int, arrival: int, segment: int, offset: int, length: int) -> None:
        self.counters.append(counter)
        self.arrivals.append(arrival)
        self.segments.append(segment)
        self.offsets.append(offset)
        self.lengths.append(length)

    def drop_first(self, count: int) -> None:
        for column in (self.counters, self.arrivals, self.segments, self.offsets, self.lengths):
            del column[:count]


class LogClosed(Exception):
    """The log was closed (its stream deleted, or the server stopping) before the records were taken."""


@dataclasses.dataclass(frozen=True)
class ReadResult:
    records: list[Record]
    #: The counter a next read continues after.
    position: int
    #: Arrival time of the shard's newest record, for MillisBehindLatest; None when the shard is empty.
    newest_arrival_ms: int | None
    #: Records remain after these.
    behind: bool


class RecordLog:
    """One stream's record log in `folder`. `open()` recovers it; `close()` stops its writer."""

    def __init__(self, folder: Path, *, clock: Callable[[], float] = time.time, retention_seconds: float = 86400,
                 segment_bytes: int = SEGMENT_BYTES):
        self.folder = folder
        self.clock = clock
        self.retention_seconds = retention_seconds
        self.segment_bytes = segment_bytes
        self._cond = threading.Condition()
        self._shards: dict[int, _ShardIndex] = {}
        self._next_counter = 0
        self._durable_counter = -1
        self._last_arrival = 0
        self._pending: list[tuple[Record, bytes]] = []
        self._open_ticket = 1
        self._durable_ticket = 0
        self._failure: str | None = None
        self._closing = False
        self._segment_ends: dict[int, int] = {}  # segment -> newest arrival in it
        self._segment_last: dict[int, int] = {}  # segment -> its last counter
        self._active: int | None = None
        self._active_fd = -1
        self._active_size = 0
        self._read_fds: dict[int, int] = {}
        self._retired_fds: list[int] = []
        self._writer: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------
    def open(self) -> RecordLog:
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.folder.glob(f"*{_SUFFIX}")):
            self._recover_segment(path)
        self.trim()
        self._writer = threading.Thread(target=self._write_loop, name=f"record-log-{self.folder.name}", daemon=True)
        self._writer.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        for fd in [self._active_fd, *self._read_fds.values(), *self._retired_fds]:
            if fd >= 0:
                os.close(fd)
        self._active_fd, self._read_fds, self._retired_fds = -1, {}, []

    def destroy(self) -> None:
        """Close the log and delete its files (DeleteStream)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- writing ----------------------------------------------------------------------------------------
    @property
    def durable_counter(self) -> int:
        """The counter through which every record is on disk and readable (writes land in counter order)."""
        return self._durable_counter

    @property
    def last_counter(self) -> int:
        """The counter of the newest record handed to the log (durable or about to be)."""
        return self._next_counter - 1

    def skip_through(self, counter: int) -> None:
        """Number new records after `counter`. A crash can lose records that were numbered but never
        acknowledged; a reshard made meanwhile closed its shards past them, and no new record may take a
        number inside a closed shard's range."""
        with self._cond:
            if counter >= self._next_counter and not self._pending:
                self._next_counter = counter + 1
                self._durable_counter = max(self._durable_counter, counter)

    def locked(self, change: Callable[[int], None]) -> None:
        """Run `change(last counter)` with no append in between: resharding closes shards at that counter."""
        with self._cond:
            change(self._next_counter - 1)

    def append(self, items: Sequence[tuple[str, bytes]], route: Callable[[int], int]) -> list[Record]:
        """Append (partition key, data) pairs; `route(i)` names item i's shard and is called under the log's
        lock, so no reshard comes between routing and numbering. Returns once the records are on disk."""
        with self._cond:
            if self._closing:
                raise LogClosed(self.folder.name)
            if self._failure:
                raise InternalError(f"The stream's record log cannot be written: {self._failure}")
            arrival = max(int(self.clock() * 1000), self._last_arrival)
            self._last_arrival = arrival
            records = []
            for i, (key, data) in enumerate(items):
                record = Record(self._next_counter, route(i), arrival, key, data)
                self._next_counter += 1
                records.append(record)
                self._pending.append((record, encode_frame(record)))
            ticket = self._open_ticket
            self._cond.notify_all()
            while self._durable_ticket < ticket and self._failure is None:
                self._cond.wait()
            if self._durable_ticket < ticket:
                raise InternalError(f"The records were not written: {self._failure}")
        return records

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait(timeout=1.0)
                    if not self._pending:
                        self._trim_locked()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                ticket = self._open_ticket
                self._open_ticket += 1
            try:
                placed = self._write(batch)
            except OSError as exc:
                with self._cond:
                    self._failure = f"{type(exc).__name__}: {exc}"
                    self._cond.notify_all()
                return
            with self._cond:
                for (record, frame), (segment, offset) in zip(batch, placed, strict=True):
                    self._index(record, segment, offset, len(frame))
                self._durable_counter = batch[-1][0].counter
                self._durable_ticket = ticket
                self._cond.notify_all()

    def _write(self, batch: list[tuple[Record, bytes]]) -> list[tuple[int, int]]:
        if self._active is None or self._active_size >= self.segment_bytes:
            self._roll(batch[0][0].counter)
        segment, offset = self._active, self._active_size
        placed = []
        for _record, frame in batch:
            placed.append((segment, offset))
            offset += len(frame)
        data = b"".join(frame for _record, frame in batch)
        view = memoryview(data)
        while view:
            written = os.write(self._active_fd, view)
            view = view[written:]
        os.fsync(self._active_fd)
        self._active_size = offset
        return placed

    def _roll(self, first_counter: int) -> None:
        if self._active_fd >= 0:
            os.fsync(self._active_fd)
            os.close(self._active_fd)
        path = self._path(first_counter)
        self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active, self._active_size = first_counter, os.fstat(self._active_fd).st_size
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name must survive a crash too
        finally:
            os.close(directory)

    def _index(self, record: Record, segment: int, offset: int, length: int) -> None:
        self._shards.setdefault(record.shard, _ShardIndex()).add(record.counter, record.arrival_ms, segment, offset,
                                                                 length)
        self._segment_ends[segment] = max(self._segment_ends.get(segment, 0), record.arrival_ms)
        self._segment_last[segment] = max(self._segment_last.get(segment, -1), record.counter)

    def _path(self, segment: int) -> Path:
        return self.folder / f"{segment:020d}{_SUFFIX}"

    # --- recovery ---------------------------------------------------------------------------------------
    def _recover_segment(self, path: Path) -> None:
        segment = int(path.stem)
        blob = path.read_bytes()
        offset = 0
        while offset + _FRAME.size <= len(blob):
            length, checksum = _FRAME.unpack_from(blob, offset)
            end = offset + _FRAME.size + length
            if length < _HEADER.size or end > len(blob) or zlib.crc32(blob[offset + _FRAME.size:end]) != checksum:
                break
            record = _decode(blob, offset)
            self._index(record, segment, offset, end - offset)
            self._next_counter = max(self._next_counter, record.counter + 1)
            self._durable_counter = self._next_counter - 1
            self._last_arrival = max(self._last_arrival, record.arrival_ms)
            offset = end
        if offset < len(blob):  # a torn tail (a crash mid-write): it was never acknowledged
            with path.open("r+b") as handle:
                handle.truncate(offset)
                os.fsync(handle.fileno())
        self._segment_ends.setdefault(segment, 0)
        self._active, self._active_size = segment, offset
        self._active_fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    # --- reading ----------------------------------------------------------------------------------------
    def read(self, shard: int, after: int, limit: int, max_bytes: int = 10 << 20) -> ReadResult:
        """Up to `limit` records of `shard` with counters above `after` (and at most `max_bytes` of data)."""
        with self._cond:
            self._trim_if_due()
            index = self._shards.get(shard)
            if index is None or not index.counters:
                return ReadResult([], after, None, False)
            first = bisect.bisect_right(index.counters, after)
            last = min(first + limit, len(index.counters))
            spans = [(index.segments[i], index.offsets[i], index.lengths[i]) for i in range(first, last)]
            fds = {segment: self._reader(segment) for segment in {span[0] for span in spans}}
            newest = index.arrivals[-1]
            total = len(index.counters)
        records: list[Record] = []
        size = 0
        for segment, start, frames in _runs(spans):
            chunk = os.pread(fds[segment], sum(frames), start)
            offset = 0
            for length in frames:
                record = _decode(chunk, offset)
                offset += length
                size += len(record.data)
                if records and size > max_bytes:
                    break
                records.append(record)
            if size > max_bytes:
                break
        position = records[-1].counter if records else after
        return ReadResult(records, position, newest, first + len(records) < total)

    def position_at(self, shard: int, arrival_ms: int) -> int:
        """The counter a read continues after to start at the shard's first record arriving at or after
        `arrival_ms` (AT_TIMESTAMP)."""
        with self._cond:
            index = self._shards.get(shard)
            if index is None or not index.counters:
                return self._next_counter - 1
            i = bisect.bisect_left(index.arrivals, arrival_ms)
            return index.counters[i] - 1 if i < len(index.counters) else index.counters[-1]

    def _reader(self, segment: int) -> int:
        fd = self._read_fds.get(segment)
        if fd is None:
            fd = self._read_fds[segment] = os.open(self._path(segment), os.O_RDONLY)
        return fd

    # --- retention --------------------------------------------------------------------------------------
    def trim(self) -> None:
        with self._cond:
            self._trim_locked()

    def _trim_if_due(self) -> None:
        cutoff = int((self.clock() - self.retention_seconds) * 1000)
        if any(index.arrivals and index.arrivals[0] < cutoff for index in self._shards.values()):
            self._trim_locked()

    def _trim_locked(self) -> None:
        cutoff = int((self.clock() - self.retention_seconds) * 1000)
        for index in self._shards.values():
            expired = bisect.bisect_left(index.arrivals, cutoff)
            if expired:
                index.drop_first(expired)
        self._delete_segments([segment for segment, newest in self._segment_ends.items() if newest < cutoff])

    def release_through(self, counter: int) -> None:
        """Forget every record up to `counter` (a consumer with its own checkpoint, Firehose, has delivered
        them): they leave the index, and finished segments holding only such records are deleted."""
        with self._cond:
            for index in self._shards.values():
                done = bisect.bisect_right(index.counters, counter)
                if done:
                    index.drop_first(done)
            self._delete_segments([segment for segment, last in self._segment_last.items() if last <= counter])

    def _delete_segments(self, segments: list[int]) -> None:
        for segment in segments:
            if segment == self._active:
                continue
            fd = self._read_fds.pop(segment, None)
            if fd is not None:  # a reader may still pread it (outside the lock): close it with the log
                self._retired_fds.append(fd)
            self._path(segment).unlink(missing_ok=True)
            self._segment_ends.pop(segment, None)
            self._segment_last.pop(segment, None)


def _runs(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, list[int]]]:
    """Adjacent frames of one segment, merged so that each run is read with one pread: (segment, start,
    frame lengths). A shard written alone is one run; interleaved shards read a frame at a time."""
    runs: list[tuple[int, int, list[int]]] = []
    end = run_bytes = -1
    for segment, offset, length in spans:
        if runs and runs[-1][0] == segment and offset == end and run_bytes < 16 << 20:
            runs[-1][2].append(length)
            run_bytes += length
        else:
            runs.append((segment, offset, [length]))
            run_bytes = length
        end = offset + length
    return runs


def encode_frame(record: Record) -> bytes:
    """A record as the log stores it: length, CRC-32, payload."""
    key = record.partition_key.encode()
    payload = _HEADER.pack(record.counter, record.arrival_ms, record.shard, len(key)) + key + record.data
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(blob: bytes, offset: int) -> Record:
    length, _checksum, counter, arrival, shard, key_length = _FRAME_AND_HEADER.unpack_from(blob, offset)
    key_start = offset + _FRAME_AND_HEADER.size
    data_start = key_start + key_length
    return Record(counter, shard, arrival, blob[key_start:data_start].decode(),
                  blob[data_start:offset + _FRAME.size + length])
