"""What every DMS Describe* shares: `Filters` (name, values) and `Marker`/`MaxRecords` pages."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sagelab.dms.errors import InvalidParameterValue, ResourceNotFoundFault

T = TypeVar("T")

#: DMS's documented page size: 100 by default, 20 at least, 100 at most.
DEFAULT_RECORDS = 100
MIN_RECORDS = 20
MAX_RECORDS = 100


def matching(items: Sequence[T], filters: list[dict[str, Any]] | None,
             fields: Mapping[str, Callable[[T], str | None]], what: str) -> list[T]:
    """The items every filter admits (a filter admits an item whose field is one of its values).

    A filter that matches nothing is ResourceNotFoundFault, as DMS answers (the *Deleted waiters rely on it)."""
    if not filters:
        return list(items)
    chosen = list(items)
    for entry in filters:
        field = fields.get(entry["Name"])
        if field is None:
            raise InvalidParameterValue(f"Filters.Name {entry['Name']!r} is not a filter of {what}: expected one "
                                        f"of {', '.join(sorted(fields))}.")
        values = set(entry["Values"])
        chosen = [item for item in chosen if field(item) in values]
    if not chosen:
        raise ResourceNotFoundFault(f"No {what} found matching the given Filters.")
    return chosen


def page(items: Sequence[T], params: Mapping[str, Any], *, least: int = MIN_RECORDS,
         most: int = MAX_RECORDS) -> tuple[list[T], str | None]:
    """One page of items and the Marker of the next page (None on the last one)."""
    size = params.get("MaxRecords")
    if size is None:
        size = min(DEFAULT_RECORDS, most)
    elif not least <= size <= most:
        raise InvalidParameterValue(f"MaxRecords must be between {least} and {most}; got {size}.")
    start = _offset(params.get("Marker"))
    end = start + size
    return list(items[start:end]), (base64.urlsafe_b64encode(str(end).encode()).decode()
                                    if end < len(items) else None)


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(marker.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise InvalidParameterValue(f"Marker {marker!r} was not issued by this service.")
    return offset


def described(key: str, items: list[dict[str, Any]], marker: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if marker:
        answer["Marker"] = marker
    return answer
