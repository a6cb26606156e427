"""When each line of a task's log was written: a time index kept beside the log, and its reader.

A task's log is a plain text file (what the task printed, nothing added to it). CloudWatch Logs hands
out every line as an event with a timestamp, and its readers (the SageMaker SDK's log poller among them)
resume from "the last timestamp I saw, skipping the N events I already printed at it", so each line
needs a time that never changes once the line is there, and times that never go backwards.

The writer side (`TimedLog`) wraps the task's text stream. Before it writes the first character of a
line it appends a mark `<file offset> <epoch milliseconds>` to `<log>.times`. The reader gives each line
the time of the last mark at or before the line's first byte: the exact write time for anything printed
from Python, and for output that bypassed the wrapper (a native library writing to the file descriptor)
the time of the last line written before it, a lower bound. Marks only ever grow, and any mark recorded
after a line is complete lies past that line, so a line's time is fixed as soon as it is readable.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import TextIO

TIMES_SUFFIX = ".times"


def times_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + TIMES_SUFFIX)


def _now_ms() -> int:
    return int(time.time() * 1000)


class LogClock:
    """The mark file of one log, shared by every stream that writes to that log (stdout and stderr)."""

    def __init__(self, log_path: Path):
        self._path = times_path(log_path)
        self._lock = threading.Lock()
        self._last = -1
        self._file: TextIO | None = None

    def mark(self, offset: int) -> None:
        with self._lock:
            now = max(_now_ms(), self._last)  # a clock stepping back must not reorder lines
            self._last = now
            if self._file is None:
                self._file = self._path.open("a", buffering=1, encoding="ascii")
            self._file.write(f"{offset} {now}\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class TimedLog:
    """A text stream that marks the time each new line starts in its log file.

    Everything else (flush, fileno, isatty, ...) is the wrapped stream's own.
    """

    def __init__(self, stream: TextIO, clock: LogClock):
        self._stream = stream
        self._clock = clock
        self._at_line_start = True

    def write(self, text: str) -> int:
        if not text:
            return 0
        if self._at_line_start:
            self._stream.flush()
            self._clock.mark(os.fstat(self._stream.fileno()).st_size)
        written = self._stream.write(text)
        self._at_line_start = text.endswith("\n")
        return written

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __enter__(self) -> TimedLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
        self._clock.close()


@dataclasses.dataclass(frozen=True)
class LogLine:
    #: Position of the line in its log (0-based); stable, since logs only grow.
    index: int
    timestamp: int  # epoch milliseconds
    message: str


def read_marks(log_path: Path) -> list[tuple[int, int]]:
    """(offset, epoch ms) marks of a log, oldest first; [] when the log has no time index."""
    try:
        text = times_path(log_path).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    marks = []
    for row in text.split("\n")[:-1]:  # the part after the last newline is a row still being written
        offset, _, stamp = row.partition(" ")
        if offset.isdigit() and stamp.isdigit():
            marks.append((int(offset), int(stamp)))
    return marks


def read_lines(log_path: Path) -> list[LogLine]:
    """Every complete line of a log with its time. A line still being written is left for the next read."""
    try:
        data = log_path.read_bytes()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    marks = read_marks(log_path)
    # A log without marks (written before time indexes existed) falls back to its last modification.
    fallback = marks[0][1] if marks else int(log_path.stat().st_mtime * 1000)
    lines: list[LogLine] = []
    start, mark_at, current = 0, 0, fallback
    while start < end:
        stop = data.index(b"\n", start)
        while mark_at < len(marks) and marks[mark_at][0] <= start:
            current = max(current, marks[mark_at][1])
            mark_at += 1
        message = data[start:stop].decode("utf-8", errors="replace").rstrip("\r")
        lines.append(LogLine(len(lines), current, message))
        start = stop + 1
    return lines


def first_and_last_time(log_path: Path) -> tuple[int, int] | None:
    """(first, last) line time of a log from its marks alone, without reading the log."""
    marks = read_marks(log_path)
    if marks:
        return marks[0][1], marks[-1][1]
    try:
        stamp = int(log_path.stat().st_mtime * 1000)
    except FileNotFoundError:
        return None
    return stamp, stamp
