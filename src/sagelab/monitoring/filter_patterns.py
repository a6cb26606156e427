"""CloudWatch Logs filter patterns for unstructured log lines.

Supported, as CloudWatch reads them: an empty pattern (everything), terms that must all appear
(`ERROR Exception`), quoted phrases (`"Train matrix"`), optional terms of which one must appear
(`?ERROR ?WARN`), excluded terms (`ERROR -DEBUG`) and a regular expression between percent signs
(`%validation-auc:0\\.9[0-9]+%`). Matching is case-sensitive. JSON (`{ $.x = 1 }`) and space-delimited
(`[ip, user, ...]`) patterns select fields of structured events, which job logs are not: they are
refused with a message saying so.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from sagelab.errors import InvalidParameter

Matcher = Callable[[str], bool]


def compile_pattern(pattern: str | None) -> Matcher:
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text[0] in "{[":
        raise InvalidParameter(f"filterPattern {pattern!r}: JSON and space-delimited patterns select fields of "
                               "structured log events; sagelab's job logs are plain text lines, so use terms, "
                               "\"quoted phrases\", ?optional and -excluded terms, or a %regular expression%.")
    if len(text) > 1 and text[0] == "%" and text[-1] == "%":
        try:
            regex = re.compile(text[1:-1])
        except re.error as exc:
            raise InvalidParameter(f"filterPattern {pattern!r} is not a valid regular expression: {exc}.") from None
        return lambda message: regex.search(message) is not None
    try:
        terms = shlex.split(text, posix=True)
    except ValueError:
        raise InvalidParameter(f"filterPattern {pattern!r} has an unbalanced quote.") from None
    required = [t for t in terms if not t.startswith(("?", "-"))]
    optional = [t[1:] for t in terms if t.startswith("?") and len(t) > 1]
    excluded = [t[1:] for t in terms if t.startswith("-") and len(t) > 1]

    def matches(message: str) -> bool:
        if any(term not in message for term in required):
            return False
        if optional and not any(term in message for term in optional):
            return False
        return not any(term in message for term in excluded)

    return matches
