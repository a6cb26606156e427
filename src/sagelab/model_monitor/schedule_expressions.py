"""Monitoring schedule expressions: the cron forms Model Monitor accepts, `NOW`, and analysis-window offsets.

Model Monitor runs at most hourly, at the top of the hour, so its cron expressions are
`cron(0 <hours> ? * * *)` where `<hours>` is `*`, an hour, a range `a-b`, a step `a/n` or `*/n`, or a
comma list of those; `NOW` is a one-time schedule that runs once, at once. Offsets are ISO 8601
durations relative to the scheduled time (`-PT1H`, `PT0H`, `-P1D`).

Time is measured in schedule hours of `hour_seconds` each (3600 on AWS; tests shrink it), so an hourly
schedule fires every `hour_seconds` and `-PT1H` means one such hour before.
"""

from __future__ import annotations

import dataclasses
import math
import re

from sagelab.errors import ValidationError

NOW = "NOW"
_CRON = re.compile(r"^cron\((?P<minute>\S+) (?P<hour>\S+) (?P<dom>\S+) (?P<month>\S+) (?P<dow>\S+) (?P<year>\S+)\)$")
_OFFSET = re.compile(r"^(?P<sign>[-+]?)P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")
FORMS = "cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H), cron(0 A-B ? * * *), cron(0 A/N ? * * *) or NOW"


@dataclasses.dataclass(frozen=True)
class Schedule:
    #: The hours of the day (0-23) it fires at; empty for NOW.
    hours: frozenset[int]

    @property
    def one_time(self) -> bool:
        return not self.hours

    def next_after(self, t: float, hour_seconds: float) -> float:
        """The first firing time strictly after `t` (a schedule hour's start)."""
        hour = math.floor(t / hour_seconds) + 1
        for step in range(48):
            if (hour + step) % 24 in self.hours:
                return (hour + step) * hour_seconds
        raise AssertionError("a cron schedule fires at least once a day")


def _hours(field: str, expression: str) -> frozenset[int]:
    hours: set[int] = set()
    for part in field.split(","):
        match = re.fullmatch(r"(\*|\d{1,2})(?:-(\d{1,2}))?(?:/(\d{1,2}))?", part)
        if match is None:
            raise ValidationError(f"ScheduleExpression {expression!r}: hour field {field!r} is not an hour, a "
                                  f"range, a step or a list of them. Use one of {FORMS}.")
        start_text, end_text, step_text = match.groups()
        start = 0 if start_text == "*" else int(start_text)
        end = 23 if start_text == "*" or (step_text and not end_text) else int(end_text or start)
        step = int(step_text or 1)
        if not (0 <= start <= 23 and 0 <= end <= 23 and start <= end and step >= 1):
            raise ValidationError(f"ScheduleExpression {expression!r}: hours must be 0-23 with a positive step, "
                                  f"got {part!r}.")
        hours.update(range(start, end + 1, step))
    return frozenset(hours)


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    if text == NOW:
        return Schedule(frozenset())
    match = _CRON.match(text)
    if match is None:
        raise ValidationError(f"ScheduleExpression {expression!r} is not a schedule Model Monitor accepts; use "
                              f"one of {FORMS}.")
    if match["minute"] != "0":
        raise ValidationError(f"ScheduleExpression {expression!r}: monitoring schedules run at the top of the "
                              f"hour, so the minute field must be 0, got {match['minute']!r}.")
    if (match["dom"], match["month"], match["dow"], match["year"]) != ("?", "*", "*", "*"):
        raise ValidationError(f"ScheduleExpression {expression!r}: monitoring schedules run hourly or daily, so "
                              "the last four fields must be '? * * *'.")
    return Schedule(_hours(match["hour"], expression))


def parse_offset(text: str, field: str) -> float:
    """An ISO 8601 duration as a number of schedule hours (negative before the scheduled time)."""
    match = _OFFSET.match(text or "")
    if match is None or not any(match[k] for k in ("d", "h", "m", "s")):
        raise ValidationError(f"{field} must be an ISO 8601 duration such as -PT1H or PT0H, got {text!r}.")
    hours = (int(match["d"] or 0) * 24 + int(match["h"] or 0) + int(match["m"] or 0) / 60
             + int(match["s"] or 0) / 3600)
    return -hours if match["sign"] == "-" else hours
