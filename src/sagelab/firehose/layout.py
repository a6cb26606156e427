"""Where Firehose puts an object: the prefix with its `!{...}` expressions, or AWS's default
`YYYY/MM/DD/HH/` layout, and the object's name.

The timestamp is the arrival time of the oldest record in the object, in UTC, as on AWS. Timestamp patterns
are Java DateTimeFormatter patterns (`yyyy`, `MM`, `dd`, `HH`, `mm`, `ss`).
"""

from __future__ import annotations

import re
import time
import uuid

from sagelab.errors import ValidationError

_EXPRESSION = re.compile(r"!\{([^{}]*)\}")
_JAVA_TOKENS = (("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"),
                ("ss", "%S"))


def _strftime(pattern: str, moment: float) -> str:
    for java, posix in _JAVA_TOKENS:
        pattern = pattern.replace(java, posix)
    return time.strftime(pattern, time.gmtime(moment))


def check_prefix(prefix: str, field: str) -> None:
    for expression in _EXPRESSION.findall(prefix):
        namespace, _, value = expression.partition(":")
        if namespace == "timestamp" and value:
            continue
        if namespace == "firehose" and value in ("random-string", "error-output-type"):
            if value == "error-output-type" and field == "Prefix":
                raise ValidationError("The expression !{firehose:error-output-type} is only allowed in "
                                      "ErrorOutputPrefix.")
            continue
        raise ValidationError(f"{field} {prefix!r} has an unsupported expression !{{{expression}}}: expected "
                              "!{timestamp:<pattern>}, !{firehose:random-string} or "
                              "!{firehose:error-output-type}.")


def render_prefix(prefix: str, moment: float, *, error_type: str | None = None) -> str:
    """The prefix for an object whose oldest record arrived at `moment` (epoch seconds)."""
    if not _EXPRESSION.search(prefix):
        if error_type is not None and not prefix:
            prefix = f"{error_type}/"
        return prefix + time.strftime("%Y/%m/%d/%H/", time.gmtime(moment))

    def expand(match: re.Match[str]) -> str:
        namespace, _, value = match[1].partition(":")
        if namespace == "timestamp":
            return _strftime(value, moment)
        if value == "random-string":
            return uuid.uuid4().hex[:11]
        return error_type or ""

    return _EXPRESSION.sub(expand, prefix)


def object_name(stream: str, moment: float, extension: str) -> str:
    """AWS's `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>` name."""
    return f"{stream}-1-{time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime(moment))}-{uuid.uuid4()}{extension}"
