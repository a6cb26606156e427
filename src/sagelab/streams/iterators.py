"""Shard iterators: opaque, signed tokens that carry a stream, a shard, a position and an expiry.

A token is `base64url(json) + "." + base64url(hmac)`, signed with a key kept in the metadata store so that
iterators stay valid across a restart. It expires five minutes after it was issued, as on AWS.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json

from sagelab.streams.errors import ExpiredIterator, InvalidArgument

#: How long a shard iterator stays valid.
ITERATOR_SECONDS = 300


@dataclasses.dataclass(frozen=True)
class Position:
    stream: str
    #: The stream's creation time: an iterator of a deleted and re-created stream is not valid for the new one.
    created: float
    shard: int
    #: Reads continue after this counter.
    after: int


class IteratorCodec:
    def __init__(self, key: bytes):
        self.key = key

    def issue(self, position: Position, now: float) -> str:
        body = json.dumps([position.stream, position.created, position.shard, position.after,
                           round(now + ITERATOR_SECONDS, 3)], separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def read(self, token: str, now: float) -> Position:
        body_text, _, signature = token.partition(".")
        try:
            body = base64.urlsafe_b64decode(body_text + "=" * (-len(body_text) % 4))
            valid = hmac.compare_digest(_b64(self._sign(body)), signature)
            stream, created, shard, after, expires = json.loads(body) if valid else (None,) * 5
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise InvalidArgument(f"Invalid ShardIterator {token[:40]!r}...: not an iterator this server issued.")
        if now > expires:
            raise ExpiredIterator(f"Iterator expired. The iterator was created at time "
                                  f"{expires - ITERATOR_SECONDS:.3f} while right now it is {now:.3f} and "
                                  f"the iterator's time to live is {ITERATOR_SECONDS} seconds.")
        return Position(stream, created, shard, after)

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.key, body, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
