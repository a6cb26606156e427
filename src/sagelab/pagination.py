"""NextToken pagination: opaque tokens that carry the offset of the next page."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from sagelab.errors import ValidationError

T = TypeVar("T")


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise ValidationError(f"Invalid pagination token: NextToken {token!r} was not issued by this "
                              "service.") from None


def page(items: Sequence[T], params: dict[str, Any], *, default_size: int = 10,
         max_size: int = 100) -> tuple[list[T], dict[str, str]]:
    """Slice one page; returns (items, {"NextToken": ...} or {})."""
    start = decode_token(params.get("NextToken"))
    size = min(int(params.get("MaxResults") or default_size), max_size)
    chunk = list(items[start:start + size])
    more = {"NextToken": encode_token(start + size)} if start + size < len(items) else {}
    return chunk, more
