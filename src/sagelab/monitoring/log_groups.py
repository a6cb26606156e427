"""CloudWatch Logs over the logs sagelab's jobs and endpoints already write.

Nothing is copied: a log group is a folder under `<home>/logs`, a log stream is one log file in it, and
its events are the file's lines with the times kept beside it (`compute.log_times`). The names are
SageMaker's:

    /aws/sagemaker/TrainingJobs         TrainingJobs/<job>.log        stream <job>/algo-1-<epoch seconds>
    /aws/sagemaker/ProcessingJobs       ProcessingJobs/<job>.log      stream <job>/algo-1-<epoch seconds>
    /aws/sagemaker/TransformJobs        TransformJobs/<job>.log       stream <job>/algo-1-<epoch seconds>
    /aws/sagemaker/Endpoints/<name>     Endpoints/<name>/<variant>-<instance>.log   stream <variant>/<instance>

Glue job runs have one stream each, named by the run id, in a folder per job:

    /aws-glue/python-jobs/output        GlueJobs/<job>/<run id>.log           (pythonshell; stderr included)
    /aws-glue/jobs/output               GlueSparkJobs/<job>/<run id>.log      (glueetl: the script's stdout)
    /aws-glue/jobs/error                GlueSparkJobs/<job>/<run id>.error.log (glueetl: stderr, Spark's log)

The epoch in a job's stream name is the time of its first line, so the name never changes; like
CloudWatch, a stream appears once its first line is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from sagelab.compute.log_times import LogLine, first_and_last_time, read_lines, read_marks
from sagelab.errors import InvalidParameter, ResourceNotFoundError

SAGEMAKER_PREFIX = "/aws/sagemaker/"
#: Log groups with one stream per job, by the folder their logs are written to.
JOB_GROUPS = ("TrainingJobs", "ProcessingJobs", "TransformJobs")
ENDPOINTS = "Endpoints"
LOG_SUFFIX = ".log"
_HOST = "algo-1"
#: Glue log group -> (folder of per-job folders, what a run's file name ends with).
GLUE_GROUPS = {"/aws-glue/python-jobs/output": ("GlueJobs", ".log"), "/aws-glue/jobs/output": ("GlueSparkJobs", ".log"),
               "/aws-glue/jobs/error": ("GlueSparkJobs", ".error.log")}
_GLUE_ERROR = ".error.log"


@dataclasses.dataclass(frozen=True)
class LogStream:
    group: str
    name: str
    path: Path
    creation_time: int  # epoch milliseconds
    first_event: int
    last_event: int


class LogGroups:
    def __init__(self, logs_dir: Path):
        self.logs_dir = logs_dir

    # --- groups -----------------------------------------------------------------------------------
    def groups(self) -> list[str]:
        names = [SAGEMAKER_PREFIX + folder for folder in JOB_GROUPS if (self.logs_dir / folder).is_dir()]
        names += [group for group in GLUE_GROUPS if self._glue_files(group)]
        endpoints = self.logs_dir / ENDPOINTS
        if endpoints.is_dir():
            names += [f"{SAGEMAKER_PREFIX}{ENDPOINTS}/{d.name}" for d in endpoints.iterdir() if d.is_dir()]
        return sorted(names)

    def group_creation_time(self, group: str) -> int:
        return int(self._folder(group).stat().st_ctime * 1000)

    def _glue_files(self, group: str, run_id: str = "*") -> list[Path]:
        folder, suffix = GLUE_GROUPS[group]
        files = (self.logs_dir / folder).glob(f"*/{run_id}{suffix}")
        return [p for p in files if p.is_file() and (suffix == _GLUE_ERROR) == p.name.endswith(_GLUE_ERROR)]

    def _glue_stream(self, group: str, path: Path) -> LogStream | None:
        suffix = GLUE_GROUPS[group][1]
        if path.stat().st_size == 0 and not read_marks(path):
            return None
        times = first_and_last_time(path)
        if times is None:
            return None
        return LogStream(group, path.name[:-len(suffix)], path, times[0], times[0], times[1])

    def _folder(self, group: str) -> Path:
        folder = None
        if group in GLUE_GROUPS and self._glue_files(group):
            folder = self.logs_dir / GLUE_GROUPS[group][0]
        elif group.startswith(SAGEMAKER_PREFIX):
            rest = group[len(SAGEMAKER_PREFIX):]
            if rest in JOB_GROUPS:
                folder = self.logs_dir / rest
            elif rest.startswith(ENDPOINTS + "/") and "/" not in rest[len(ENDPOINTS) + 1:]:
                folder = self.logs_dir / ENDPOINTS / rest[len(ENDPOINTS) + 1:]
        if folder is None or not folder.is_dir():
            raise ResourceNotFoundError(f"The specified log group does not exist: {group!r}. sagelab keeps the "
                                        "groups /aws/sagemaker/TrainingJobs, /aws/sagemaker/ProcessingJobs, "
                                        "/aws/sagemaker/TransformJobs, /aws/sagemaker/Endpoints/<endpoint> and "
                                        f"{', '.join(GLUE_GROUPS)}, each once something has logged to it.")
        return folder

    # --- streams ----------------------------------------------------------------------------------
    def streams(self, group: str, prefix: str = "") -> list[LogStream]:
        """The group's streams whose names start with `prefix`, by name."""
        folder = self._folder(group)
        if group in GLUE_GROUPS:
            streams = [self._glue_stream(group, p) for p in self._glue_files(group)]
            return sorted((s for s in streams if s is not None and s.name.startswith(prefix)), key=lambda s: s.name)
        endpoint = self._is_endpoint(folder)
        found = []
        for path in folder.iterdir():
            if not path.name.endswith(LOG_SUFFIX) or not path.is_file():
                continue
            # Narrow by the file name first: only the streams that may match have their times read.
            known = _endpoint_stream(path.name[:-len(LOG_SUFFIX)]) if endpoint else path.name[:-len(LOG_SUFFIX)] + "/"
            if not (known.startswith(prefix) or prefix.startswith(known)):
                continue
            stream = self._stream(group, path, endpoint)
            if stream is not None and stream.name.startswith(prefix):
                found.append(stream)
        return sorted(found, key=lambda s: s.name)

    def stream(self, group: str, name: str) -> LogStream:
        folder = self._folder(group)
        if group in GLUE_GROUPS:
            files = self._glue_files(group, name) if name and not set(name) & set("*?[]/") else []
            stream = self._glue_stream(group, files[0]) if files else None
            if stream is None:
                raise ResourceNotFoundError(f"The specified log stream does not exist: {name!r} in log group "
                                            f"{group!r}.")
            return stream
        endpoint = self._is_endpoint(folder)
        if endpoint:
            variant, _, instance = name.partition("/")
            base = f"{variant}-{instance}"
        else:
            base = name.partition("/")[0]  # SageMaker job names cannot contain "/"
        path = folder / (base + LOG_SUFFIX)
        stream = self._stream(group, path, endpoint) if base and path.is_file() else None
        if stream is None or stream.name != name:
            raise ResourceNotFoundError(f"The specified log stream does not exist: {name!r} in log group "
                                        f"{group!r}.")
        return stream

    def _is_endpoint(self, folder: Path) -> bool:
        return folder.parent == self.logs_dir / ENDPOINTS

    @staticmethod
    def _stream(group: str, path: Path, endpoint: bool) -> LogStream | None:
        if not read_marks(path) and path.stat().st_size == 0:
            return None  # nothing written yet: CloudWatch has no stream until the first event
        times = first_and_last_time(path)
        if times is None:
            return None
        first, last = times
        base = path.name[:-len(LOG_SUFFIX)]
        name = _endpoint_stream(base) if endpoint else f"{base}/{_HOST}-{first // 1000}"
        return LogStream(group, name, path, first, first, last)

    def lines(self, stream: LogStream) -> list[LogLine]:
        return read_lines(stream.path)


def _endpoint_stream(base: str) -> str:
    """`<variant>-<instance id>` (the log file's name) -> `<variant>/<instance id>` (CloudWatch's)."""
    variant, _, instance = base.rpartition("-")
    return f"{variant}/{instance}" if variant else base


# --- reading a stream by position (GetLogEvents) -----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EventPage:
    events: list[LogLine]
    #: Where the next forward read starts (the line index after the last event returned).
    next_forward: int
    #: Where the next backward read ends (the index of the first event returned).
    next_backward: int


def read_page(lines: list[LogLine], *, start_time: int | None, end_time: int | None, position: int | None,
              forward: bool, limit: int) -> EventPage:
    """CloudWatch's GetLogEvents window: `limit` events in [start_time, end_time) from a position.

    Forward reads start at `position` (default: the first line); backward reads end just before it
    (default: after the last line) and return the `limit` latest events, oldest first. A read at the
    end returns no events and the same position, which is how pollers know they are done.
    """
    def in_window(line: LogLine) -> bool:
        return (start_time is None or line.timestamp >= start_time) and (end_time is None or line.timestamp < end_time)

    if forward:
        start = 0 if position is None else min(position, len(lines))
        chosen = []
        for line in lines[start:]:
            if len(chosen) == limit:
                break
            if in_window(line):
                chosen.append(line)
        if not chosen:
            return EventPage([], start, start)
        return EventPage(chosen, chosen[-1].index + 1, chosen[0].index)
    stop = len(lines) if position is None else min(position, len(lines))
    chosen = []
    for line in reversed(lines[:stop]):
        if len(chosen) == limit:
            break
        if in_window(line):
            chosen.append(line)
    chosen.reverse()
    if not chosen:
        return EventPage([], stop, stop)
    return EventPage(chosen, chosen[-1].index + 1, chosen[0].index)


# --- searching streams (FilterLogEvents) ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FoundEvent:
    stream: str
    line: LogLine


def interleave(streams: list[LogStream], lines_of, *, start_time: int | None, end_time: int | None,
               matches) -> Iterator[FoundEvent]:
    """Matching events of several streams, in time order (ties: stream name, then position)."""
    found: list[FoundEvent] = []
    for stream in streams:
        for line in lines_of(stream):
            if start_time is not None and line.timestamp < start_time:
                continue
            if end_time is not None and line.timestamp >= end_time:
                continue
            if matches(line.message):
                found.append(FoundEvent(stream.name, line))
    found.sort(key=lambda e: (e.line.timestamp, e.stream, e.line.index))
    return iter(found)


def check_limit(value: int | None, *, default: int, highest: int, field: str = "limit") -> int:
    if value is None:
        return default
    if not 1 <= value <= highest:
        raise InvalidParameter(f"{field} must be between 1 and {highest}; got {value}.")
    return value
