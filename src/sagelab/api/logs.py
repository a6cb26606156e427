"""CloudWatch Logs (AWS JSON 1.1, target prefix `Logs_20140328`): reading job and endpoint logs.

Translation only: the groups, streams and events are `monitoring.log_groups`'. Tokens are CloudWatch's
shapes: GetLogEvents hands out `f/<position>` and `b/<position>` (a read at the end returns the token it
was given, so pollers stop), FilterLogEvents an opaque token naming the last event returned.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import LOGS, Audit, Call, OperationTable
from sagelab.errors import InvalidParameter
from sagelab.monitoring.filter_patterns import compile_pattern
from sagelab.monitoring.log_groups import LogGroups, LogStream, check_limit, interleave, read_page
from sagelab.pagination import decode_token, encode_token

if TYPE_CHECKING:
    from sagelab.platform import Platform

MAX_EVENTS = 10000
MAX_DESCRIBE = 50
_POSITION_TOKEN = re.compile(r"^([fb])/(\d{1,56})$")
op = LOGS.op
GROUP = "log-group:{logGroupIdentifier|logGroupName}"


def _position_token(direction: str, position: int) -> str:
    return f"{direction}/{position:056d}"


def _group_name(params: dict[str, Any]) -> str:
    name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
    if name and identifier:
        raise InvalidParameter("Specify logGroupName or logGroupIdentifier, not both.")
    if identifier:
        # An identifier is a name or an ARN: arn:aws:logs:<region>:<account>:log-group:<name>[:*]
        if identifier.startswith("arn:"):
            identifier = identifier.split(":log-group:", 1)[-1].removesuffix(":*")
        return identifier
    if not name:
        raise InvalidParameter("Either logGroupName or logGroupIdentifier is required.")
    return name


class LogsFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform
        self.groups = LogGroups(platform.logs_dir)

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def _arn(self, request: Request, group: str) -> str:
        return f"arn:aws:logs:{request.region}:{self.platform.account_id}:log-group:{group}"

    # --- groups and streams ---------------------------------------------------------------------------
    def describe_log_groups(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        prefix = params.get("logGroupNamePrefix") or ""
        pattern = params.get("logGroupNamePattern")
        if prefix and pattern:
            raise InvalidParameter("Specify logGroupNamePrefix or logGroupNamePattern, not both.")
        names = [g for g in self.groups.groups() if g.startswith(prefix) and (not pattern or pattern in g)]
        limit = check_limit(params.get("limit"), default=MAX_DESCRIBE, highest=MAX_DESCRIBE)
        start = decode_token(params.get("nextToken"))
        chosen = names[start:start + limit]
        groups = [{"logGroupName": g, "creationTime": self.groups.group_creation_time(g), "metricFilterCount": 0,
                   "arn": self._arn(request, g) + ":*", "logGroupArn": self._arn(request, g), "storedBytes": 0,
                   "logGroupClass": "STANDARD"} for g in chosen]
        more = {"nextToken": encode_token(start + limit)} if start + limit < len(names) else {}
        return {"logGroups": groups, **more}

    def describe_log_streams(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        group = _group_name(params)
        prefix = params.get("logStreamNamePrefix") or ""
        order = params.get("orderBy") or "LogStreamName"
        if order == "LastEventTime" and prefix:
            raise InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = self.groups.streams(group, prefix)
        if order == "LastEventTime":
            streams.sort(key=lambda s: (s.last_event, s.name))
        if params.get("descending"):
            streams.reverse()
        limit = check_limit(params.get("limit"), default=MAX_DESCRIBE, highest=MAX_DESCRIBE)
        start = decode_token(params.get("nextToken"))
        chosen = streams[start:start + limit]
        more = {"nextToken": encode_token(start + limit)} if start + limit < len(streams) else {}
        return {"logStreams": [self._stream_doc(request, s) for s in chosen], **more}

    def _stream_doc(self, request: Request, stream: LogStream) -> dict[str, Any]:
        return {"logStreamName": stream.name, "creationTime": stream.creation_time,
                "firstEventTimestamp": stream.first_event, "lastEventTimestamp": stream.last_event,
                "lastIngestionTime": stream.last_event, "storedBytes": 0,
                "arn": f"{self._arn(request, stream.group)}:log-stream:{stream.name}"}

    # --- events ---------------------------------------------------------------------------------------
    def get_log_events(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        stream = self.groups.stream(_group_name(params), params["logStreamName"])
        limit = check_limit(params.get("limit"), default=MAX_EVENTS, highest=MAX_EVENTS)
        token = params.get("nextToken")
        if token:
            match = _POSITION_TOKEN.match(token)
            if not match:
                raise InvalidParameter(f"The specified nextToken is invalid: {token!r} was not issued by "
                                       "GetLogEvents.")
            forward, position = match[1] == "f", int(match[2])
        else:
            forward, position = bool(params.get("startFromHead", False)), None
        page = read_page(self.groups.lines(stream), start_time=params.get("startTime"),
                         end_time=params.get("endTime"), position=position, forward=forward, limit=limit)
        events = [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}
                  for e in page.events]
        return {"events": events, "nextForwardToken": _position_token("f", page.next_forward),
                "nextBackwardToken": _position_token("b", page.next_backward)}

    def filter_log_events(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        group = _group_name(params)
        names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameter("Specify logStreamNames or logStreamNamePrefix, not both.")
        matches = compile_pattern(params.get("filterPattern"))
        limit = check_limit(params.get("limit"), default=MAX_EVENTS, highest=MAX_EVENTS)
        streams = [s for s in self.groups.streams(group, prefix or "") if not names or s.name in names]
        after = _decode_filter_token(params.get("nextToken"))
        found = interleave(streams, self.groups.lines, start_time=params.get("startTime"),
                           end_time=params.get("endTime"), matches=matches)
        events: list[dict[str, Any]] = []
        last = None
        for event in found:
            key = (event.line.timestamp, event.stream, event.line.index)
            if after is not None and key <= after:
                continue
            if len(events) == limit:
                break
            events.append({"logStreamName": event.stream, "timestamp": event.line.timestamp,
                           "message": event.line.message, "ingestionTime": event.line.timestamp,
                           "eventId": f"{event.line.timestamp:020d}{zlib.crc32(event.stream.encode()):010d}"
                                      f"{event.line.index:010d}"})
            last = key
        else:
            last = None  # everything was returned: no next page
        response: dict[str, Any] = {"events": events, "searchedLogStreams": [
            {"logStreamName": s.name, "searchedCompletely": last is None} for s in streams]}
        if last is not None:
            response["nextToken"] = base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode()
        return response


    operations = OperationTable("logs", LOGS, (
        # It names no group, so IAM checks it against every group: a policy must allow log-group:*.
        op("DescribeLogGroups", describe_log_groups, "log-group:*", read_only=True),
        op("DescribeLogStreams", describe_log_streams, GROUP, read_only=True),
        # CloudTrail records no event for reading log events, only for managing groups and streams.
        op("GetLogEvents", get_log_events, GROUP + ":log-stream:{logStreamName}", audit=Audit.NOT_RECORDED,
           read_only=True),
        op("FilterLogEvents", filter_log_events, GROUP, audit=Audit.NOT_RECORDED, read_only=True),
    ))
    wire = JsonService("Logs_20140328", operations)

def _decode_filter_token(token: str | None) -> tuple[int, str, int] | None:
    if not token:
        return None
    try:
        timestamp, stream, index = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not (isinstance(timestamp, int) and isinstance(stream, str) and isinstance(index, int)):
            raise ValueError
    except (ValueError, TypeError):
        raise InvalidParameter(f"The specified nextToken is invalid: {token!r} was not issued by "
                               "FilterLogEvents.") from None
    return timestamp, stream, index
