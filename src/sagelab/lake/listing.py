"""S3 listing semantics over a sorted stream of objects: delimiter folding and paging.

Keys are compared as UTF-8 bytes, S3's order. A page holds at most `max_keys` entries, where an entry is
an object or a common prefix (a delimiter-folded "folder"); `next_marker` names the last entry returned,
and resuming after it skips that entry and, for a common prefix, every key beneath it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from sagelab.lake.blobs import ObjectInfo
from sagelab.lake.versions import VersionEntry, name_of


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


@dataclasses.dataclass(frozen=True)
class VersionPage:
    entries: list[VersionEntry]
    prefixes: list[str]
    is_truncated: bool
    #: Where the next page resumes (ListObjectVersions' NextKeyMarker, NextVersionIdMarker).
    next_key_marker: str | None
    next_version_id_marker: str | None


def version_page(entries: Iterable[VersionEntry], *, prefix: str = "", delimiter: str = "", key_marker: str = "",
                 version_id_marker: str = "", max_keys: int = 1000) -> VersionPage:
    """One page of ListObjectVersions over `entries` (by key, newest first within a key).

    A key marker alone resumes after every version of that key; with a version id marker, after that
    version of it. Versions, delete markers and common prefixes each count once towards `max_keys`.
    """
    found: list[VersionEntry] = []
    prefixes: list[str] = []
    if max_keys <= 0:
        return VersionPage(found, prefixes, False, None, None)
    after = key_marker.encode()
    skipping = bool(version_id_marker)  # within the marker key, until the marker version has gone by
    last: tuple[str, str | None] | None = None
    last_prefix = None
    for entry in entries:
        key = entry.info.key
        if not key.startswith(prefix):
            continue
        encoded = key.encode()
        if key_marker and (encoded < after or (encoded == after and not version_id_marker)):
            continue
        if encoded == after and skipping:
            if name_of(entry.info.version_id) == version_id_marker:
                skipping = False
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[:cut + len(delimiter)]
            if common in (last_prefix, key_marker):
                continue
            name: tuple[str, str | None] = (common, None)
        else:
            name = (key, name_of(entry.info.version_id))
        if len(found) + len(prefixes) == max_keys:
            assert last is not None
            return VersionPage(found, prefixes, True, last[0], last[1])
        if cut >= 0:
            last_prefix = name[0]
            prefixes.append(name[0])
        else:
            found.append(entry)
        last = name
    return VersionPage(found, prefixes, False, None, None)
