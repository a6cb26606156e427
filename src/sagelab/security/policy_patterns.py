"""Wildcard patterns of the policy language, compiled once to regular expressions.

Three dialects, as AWS documents them:

- actions (`sagemaker:Describe*`, `s3:Get?bject`): `*` is any run of characters and `?` one character, and
  matching ignores case; callers lower-case both sides instead of paying for re.IGNORECASE.
- strings (StringLike): the same wildcards, case-sensitive.
- ARNs (Resource, NotResource, ArnLike): case-sensitive and matched one colon-separated segment at a time, so
  in `arn:aws:sagemaker:*:111122223333:model/*` the region's `*` cannot swallow the account. The sixth segment
  (the resource, after the fifth colon) may itself contain colons and slashes, and its wildcards span them.
  When a pattern stops short of six segments and ends in `*` (`arn:aws:sagemaker:*`), that last `*` runs to
  the end of the ARN across colons.

Patterns arrive as chunks (text, wildcards_active) from policy_variables, so text substituted from the request
is always literal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from sagelab.security.policy_variables import Chunk

__all__ = ["any_of", "arn_source", "compiled_arn", "compiled_glob", "glob_source", "has_wildcard"]

#: An ARN has six colon-separated segments; colons after the fifth belong to the resource.
_ARN_SEGMENTS = 6


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


def _flat(chunks: Iterable[Chunk]) -> list[tuple[str, bool]]:
    return [(char, wild) for text, wild in chunks for char in text]


def glob_source(chunks: Iterable[Chunk]) -> str:
    """Regex source for an action or StringLike pattern: `*` -> any run, `?` -> any one character."""
    out = []
    for char, wild in _flat(chunks):
        if wild and char == "*":
            out.append(".*")
        elif wild and char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)


def arn_source(chunks: Iterable[Chunk]) -> str:
    """Regex source for an ARN pattern, segment by segment (see the module docstring)."""
    chars = _flat(chunks)
    colons = sum(1 for char, _ in chars if char == ":")
    short = colons < _ARN_SEGMENTS - 1
    out = []
    segment = 0
    for position, (char, wild) in enumerate(chars):
        in_resource = segment == _ARN_SEGMENTS - 1
        if char == ":" and not in_resource:
            out.append(":")
            segment += 1
        elif wild and char == "*":
            runs_to_end = in_resource or (short and position == len(chars) - 1)
            out.append(".*" if runs_to_end else "[^:]*")
        elif wild and char == "?":
            out.append("." if in_resource else "[^:]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def any_of(sources: Iterable[str]) -> re.Pattern[str] | None:
    """One compiled alternation for several patterns (to be used with fullmatch); None if there are none."""
    sources = list(sources)
    if not sources:
        return None
    return re.compile("|".join(f"(?:{s})" for s in sources), re.DOTALL)


@functools.lru_cache(maxsize=4096)
def compiled_glob(chunks: tuple[Chunk, ...]) -> re.Pattern[str]:
    """A resolved StringLike pattern; cached because patterns with variables are rebuilt per request."""
    return re.compile(glob_source(chunks), re.DOTALL)


@functools.lru_cache(maxsize=4096)
def compiled_arn(chunks: tuple[Chunk, ...]) -> re.Pattern[str]:
    """A resolved ARN pattern; cached for the same reason as compiled_glob."""
    return re.compile(arn_source(chunks), re.DOTALL)
