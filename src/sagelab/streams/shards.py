"""Shard math as AWS does it: MD5 of the partition key into a 128-bit hash key space, even ranges, and
sequence numbers that are AWS-looking decimal strings increasing within a shard.

A stream keeps one record counter; a record's sequence number encodes that counter and its shard's number,
so it orders records exactly as the log does and says which shard it came from.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
from typing import Any

from sagelab.streams.errors import InvalidArgument, ResourceNotFoundError

#: The largest hash key: the hash key space is [0, 2**128 - 1].
MAX_HASH_KEY = 2**128 - 1
#: Sequence numbers are 56 decimal digits, as on AWS ("4959...").
_SEQUENCE_BASE = 49 * 10**54
_SHARD_SLOTS = 10**6


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key AWS maps a partition key to: MD5 of its UTF-8 bytes, read big-endian."""
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def parse_hash_key(text: str, field: str = "ExplicitHashKey") -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_HASH_KEY:
        raise InvalidArgument(f"Invalid {field} {text!r}: expected a decimal integer in [0, 2^128 - 1].")
    return value


def even_ranges(count: int, start: int = 0, end: int = MAX_HASH_KEY) -> list[tuple[int, int]]:
    """`count` hash key ranges splitting [start, end] evenly; the last one takes the remainder (as AWS)."""
    width = (end - start + 1) // count
    bounds = [start + i * width for i in range(count)] + [end + 1]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def shard_id(number: int) -> str:
    return f"shardId-{number:012d}"


def shard_number(text: str) -> int:
    prefix, _, digits = text.rpartition("-")
    if prefix not in ("shardId", "") or not digits.isdigit():
        raise InvalidArgument(f"Invalid ShardId {text!r}: expected shardId-<12 digits>.")
    return int(digits)


def sequence_number(counter: int, shard: int) -> str:
    return str(_SEQUENCE_BASE + counter * _SHARD_SLOTS + shard)


def parse_sequence_number(text: str) -> tuple[int, int]:
    """(counter, shard number) of a sequence number this server issued."""
    value = int(text) - _SEQUENCE_BASE if text.isdigit() else -1
    if value < 0:
        raise InvalidArgument(f"Invalid StartingSequenceNumber {text!r}: not a sequence number of this stream.")
    return divmod(value, _SHARD_SLOTS)


@dataclasses.dataclass
class Shard:
    number: int
    start: int
    end: int
    #: The stream counter of its first record; it ends (closes) after `ending`.
    starting: int
    ending: int | None = None
    parent: int | None = None
    adjacent_parent: int | None = None
    opened_at: float = 0.0
    closed_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.ending is None

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ShardId": shard_id(self.number),
                               "HashKeyRange": {"StartingHashKey": str(self.start), "EndingHashKey": str(self.end)},
                               "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(self.starting,
                                                                                                 self.number)}}
        if self.ending is not None:
            doc["SequenceNumberRange"]["EndingSequenceNumber"] = sequence_number(self.ending, self.number)
        if self.parent is not None:
            doc["ParentShardId"] = shard_id(self.parent)
        if self.adjacent_parent is not None:
            doc["AdjacentParentShardId"] = shard_id(self.adjacent_parent)
        return doc

    def to_doc(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "start": str(self.start), "end": str(self.end)}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Shard:
        return cls(**{**doc, "start": int(doc["start"]), "end": int(doc["end"])})


class ShardMap:
    """A stream's shards, open and closed, and the resharding operations that change them."""

    def __init__(self, shards: list[Shard]):
        self.shards = shards
        #: Open shards by starting hash key, built on first use; a reshard builds a new map.
        self._routes: tuple[list[int], list[Shard]] | None = None

    @classmethod
    def create(cls, count: int, *, counter: int, now: float) -> ShardMap:
        return cls([Shard(i, start, end, counter, opened_at=now) for i, (start, end) in enumerate(even_ranges(count))])

    @property
    def open_shards(self) -> list[Shard]:
        return [s for s in self.shards if s.is_open]

    def get(self, number: int) -> Shard | None:
        return next((s for s in self.shards if s.number == number), None)

    def route(self, key: int) -> Shard:
        """The open shard whose hash key range holds `key` (the open shards cover the space, in order)."""
        if self._routes is None:
            ordered = sorted(self.open_shards, key=lambda s: s.start)
            self._routes = ([s.start for s in ordered], ordered)
        starts, ordered = self._routes
        return ordered[bisect.bisect_right(starts, key) - 1]

    def _next_number(self) -> int:
        return max(s.number for s in self.shards) + 1

    def _open(self, shard: Shard, field: str) -> Shard:
        if not shard.is_open:
            raise InvalidArgument(f"{field} {shard_id(shard.number)} is closed: only open shards can be resharded.")
        return shard

    def _close(self, shard: Shard, counter: int, now: float) -> None:
        shard.ending, shard.closed_at = counter, now
        self._routes = None

    def split(self, number: int, new_start: int, *, counter: int, now: float) -> None:
        parent = self._find(number, "ShardToSplit")
        self._open(parent, "ShardToSplit")
        if not parent.start < new_start <= parent.end:
            raise InvalidArgument(f"NewStartingHashKey {new_start} is not inside shard {shard_id(number)}'s hash "
                                  f"key range ({parent.start}..{parent.end}) above its starting hash key.")
        self._close(parent, counter, now)
        first = self._next_number()
        self.shards += [Shard(first, parent.start, new_start - 1, counter + 1, parent=number, opened_at=now),
                        Shard(first + 1, new_start, parent.end, counter + 1, parent=number, opened_at=now)]

    def merge(self, number: int, adjacent: int, *, counter: int, now: float) -> None:
        one = self._open(self._find(number, "ShardToMerge"), "ShardToMerge")
        other = self._open(self._find(adjacent, "AdjacentShardToMerge"), "AdjacentShardToMerge")
        if one.end + 1 != other.start and other.end + 1 != one.start:
            raise InvalidArgument(f"Shards {shard_id(number)} and {shard_id(adjacent)} are not adjacent: their hash "
                                  "key ranges must touch to be merged.")
        self._close(one, counter, now)
        self._close(other, counter, now)
        self.shards.append(Shard(self._next_number(), min(one.start, other.start), max(one.end, other.end),
                                 counter + 1, parent=number, adjacent_parent=adjacent, opened_at=now))

    def rescale(self, target: int, *, counter: int, now: float) -> None:
        """UpdateShardCount's UNIFORM_SCALING: the open shards become `target` even ranges. Each new shard
        names the old shards its range overlaps as parents (AWS reaches the same end by splits and merges)."""
        old = sorted(self.open_shards, key=lambda s: s.start)
        first = self._next_number()
        for shard in old:
            self._close(shard, counter, now)
        for i, (start, end) in enumerate(even_ranges(target)):
            overlapping = [s.number for s in old if s.start <= end and start <= s.end]
            self.shards.append(Shard(first + i, start, end, counter + 1, parent=overlapping[0],
                                     adjacent_parent=overlapping[1] if len(overlapping) > 1 else None,
                                     opened_at=now))

    def _find(self, number: int, field: str) -> Shard:
        shard = self.get(number)
        if shard is None:
            raise ResourceNotFoundError(f"{field} {shard_id(number)} does not exist in this stream.")
        return shard

    def to_doc(self) -> list[dict[str, Any]]:
        return [s.to_doc() for s in self.shards]

    @classmethod
    def from_doc(cls, docs: list[dict[str, Any]]) -> ShardMap:
        return cls([Shard.from_doc(d) for d in docs])
