"""Line times of a task log: exact for Python writes, a stable lower bound for output that bypassed them."""

from __future__ import annotations

import os
import time

from sagelab.compute.engine import open_log
from sagelab.compute.log_times import read_lines, read_marks, times_path


def test_each_line_gets_the_time_it_was_written(tmp_path):
    path = tmp_path / "job.log"
    with open_log(path) as log:
        log.write("first line\n")
        time.sleep(0.02)
        print("second", "line", file=log)
        log.write("third ")
        log.write("line, written in two calls\n")
    lines = read_lines(path)
    assert [line.message for line in lines] == ["first line", "second line", "third line, written in two calls"]
    assert [line.index for line in lines] == [0, 1, 2]
    assert lines[1].timestamp - lines[0].timestamp >= 20
    assert lines[2].timestamp >= lines[1].timestamp
    assert len(read_marks(path)) == 3  # one mark per line, not per write


def test_output_that_bypasses_the_wrapper_takes_the_previous_time_and_keeps_it(tmp_path):
    path = tmp_path / "job.log"
    with open_log(path) as log:
        log.write("from python\n")
        log.flush()
        os.write(log.fileno(), b"native one\nnative two\n")
        before = [(line.message, line.timestamp) for line in read_lines(path)]
        time.sleep(0.02)
        log.write("python again\n")
    after = read_lines(path)
    assert [(line.message, line.timestamp) for line in after[:3]] == before
    assert before[1][1] == before[0][1] == before[2][1]
    assert after[3].timestamp > before[0][1]


def test_a_line_still_being_written_is_not_an_event_yet(tmp_path):
    path = tmp_path / "job.log"
    with open_log(path) as log:
        log.write("done\nhalf a li")
        log.flush()
        assert [line.message for line in read_lines(path)] == ["done"]
        log.write("ne\n")
    assert [line.message for line in read_lines(path)] == ["done", "half a line"]


def test_a_log_without_times_falls_back_to_its_modification_time(tmp_path):
    path = tmp_path / "old.log"
    path.write_text("a\nb\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    assert not times_path(path).exists()
    assert {line.timestamp for line in read_lines(path)} == {1_700_000_000_000}


def test_a_mark_still_being_written_is_not_read(tmp_path):
    path = tmp_path / "job.log"
    path.write_text("one\ntwo\n")
    times_path(path).write_text("0 1000\n4 20")  # the second mark's row is half written
    assert [(line.message, line.timestamp) for line in read_lines(path)] == [("one", 1000), ("two", 1000)]
