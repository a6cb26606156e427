"""S3 listing semantics over a sorted stream of objects: delimiter folding and paging.

Keys are compared as UTF-8 bytes, S3's order. A page holds at most `max_keys` entries, where an entry is
an object or a common prefix (a delimiter-folded "folder"); `next_marker` names the last entry returned,
and resuming after it skips that entry and, for a common prefix, every key beneath it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from sagelab.lake.blobs import ObjectInfo


@dataclasses.dataclass(frozen=True)
class ListingPage:
    objects: list[ObjectInfo]
    prefixes: list[str]
    is_truncated: bool
    #: The last entry (key or common prefix) on this page when more follow; resume after it.
    next_marker: str | None


def _entries(objects: Iterable[ObjectInfo], prefix: str, delimiter: str,
             marker: str) -> Iterator[tuple[str, ObjectInfo | None]]:
    """(name, object) for plain keys and (common prefix, None) for folded ones, after `marker`."""
    after = marker.encode()
    last_prefix = None
    for info in objects:
        if not info.key.startswith(prefix) or info.key.encode() <= after:
            continue
        cut = info.key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            yield info.key, info
            continue
        common = info.key[:cut + len(delimiter)]
        if common != last_prefix and common != marker:
            last_prefix = common
            yield common, None


def list_page(objects: Iterable[ObjectInfo], *, prefix: str = "", delimiter: str = "", marker: str = "",
              max_keys: int = 1000) -> ListingPage:
    """One page of a listing of `objects` (sorted by key, as `BlobStore.list` yields them)."""
    found: list[ObjectInfo] = []
    prefixes: list[str] = []
    if max_keys <= 0:
        return ListingPage(found, prefixes, False, None)
    last = None
    for name, info in _entries(objects, prefix, delimiter, marker):
        if len(found) + len(prefixes) == max_keys:
            return ListingPage(found, prefixes, True, last)
        if info is None:
            prefixes.append(name)
        else:
            found.append(info)
        last = name
    return ListingPage(found, prefixes, False, None)
