"""The record log on its own: a torn tail is cut off on open, records expire with the retention period and
their segments are deleted, and concurrent appenders share fsyncs without losing order."""

from __future__ import annotations

import threading

from sagelab.streams.record_log import RecordLog


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _segments(folder):
    return sorted(folder.glob("*.seg"))


def test_a_torn_tail_is_cut_off_and_appending_continues_after_it(tmp_path):
    log = RecordLog(tmp_path / "s").open()
    written = log.append([(f"k{i}", f"v{i}".encode()) for i in range(5)], lambda i: 0)
    log.close()
    segment = _segments(tmp_path / "s")[0]
    whole = segment.stat().st_size
    with segment.open("ab") as handle:  # half a frame, as a crash mid-write leaves
        handle.write(b"\x40\x00\x00\x00\x01\x02")
    reopened = RecordLog(tmp_path / "s").open()
    try:
        assert segment.stat().st_size == whole
        assert [r.data for r in reopened.read(0, -1, 100).records] == [f"v{i}".encode() for i in range(5)]
        more = reopened.append([("k", b"after")], lambda i: 0)
        assert more[0].counter == written[-1].counter + 1
        assert reopened.read(0, written[-1].counter, 100).records[0].data == b"after"
    finally:
        reopened.close()


def test_records_expire_with_the_retention_period_and_old_segments_are_deleted(tmp_path):
    clock = Clock()
    log = RecordLog(tmp_path / "s", clock=clock, retention_seconds=3600, segment_bytes=1).open()
    try:
        log.append([("k", b"old")], lambda i: 0)
        clock.now += 1800
        log.append([("k", b"young")], lambda i: 0)
        assert len(_segments(tmp_path / "s")) == 2  # a segment per write at this segment size
        clock.now += 1801  # the first record is now older than an hour
        assert [r.data for r in log.read(0, -1, 10).records] == [b"young"]
        assert len(_segments(tmp_path / "s")) == 1
        log.retention_seconds = 60
        log.trim()
        assert log.read(0, -1, 10).records == []
    finally:
        log.close()


def test_concurrent_appenders_keep_each_ones_order_and_all_counters_are_distinct(tmp_path):
    log = RecordLog(tmp_path / "s").open()
    results: dict[int, list] = {}

    def writer(w: int) -> None:
        results[w] = [r for batch in range(50) for r in log.append([(f"w{w}", f"{w}:{batch}".encode())],
                                                                    lambda i: w % 2)]

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        counters = [r.counter for records in results.values() for r in records]
        assert len(set(counters)) == 400
        for shard in (0, 1):
            stored = log.read(shard, -1, 1000).records
            assert [r.counter for r in stored] == sorted(r.counter for r in stored) and len(stored) == 200
    finally:
        log.close()


def test_released_records_leave_the_index_and_their_finished_segments_are_deleted(tmp_path):
    log = RecordLog(tmp_path / "s", segment_bytes=1).open()
    try:
        written = [log.append([("k", f"r{i}".encode())], lambda i: 0)[0] for i in range(3)]
        assert len(_segments(tmp_path / "s")) == 3
        log.release_through(written[1].counter)
        assert [r.data for r in log.read(0, -1, 10).records] == [b"r2"]
        assert len(_segments(tmp_path / "s")) == 1  # the active segment stays
    finally:
        log.close()


def test_appending_to_a_closed_log_is_refused_rather_than_left_waiting(tmp_path):
    import pytest

    from sagelab.streams.record_log import LogClosed

    log = RecordLog(tmp_path / "s").open()
    log.close()
    with pytest.raises(LogClosed):
        log.append([("k", b"late")], lambda i: 0)


def test_numbering_can_skip_past_counters_a_crash_lost(tmp_path):
    log = RecordLog(tmp_path / "s").open()
    try:
        log.append([("k", b"a")], lambda i: 0)
        log.skip_through(41)
        assert log.append([("k", b"b")], lambda i: 1)[0].counter == 42
        assert log.durable_counter == 42
        log.skip_through(10)  # never backwards
        assert log.append([("k", b"c")], lambda i: 1)[0].counter == 43
    finally:
        log.close()
