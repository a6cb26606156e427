"""How an input object becomes inference requests (mini-batches), per SplitType and BatchStrategy.

- SplitType None: the whole object is one request.
- SplitType Line, MultiRecord: as many whole lines as fit in MaxPayloadInMB per request. The object is cut
  at the last newline before the limit, by bytes: no per-record Python work, so large files stream at the
  speed of the model.
- SplitType Line, SingleRecord: one line per request (blank lines are skipped).
- With DataProcessing, records are handled one by one (filtered, remembered for the join), then grouped
  into requests the same way.

Every batch knows the object's line numbers it spans, so a rejected request can be reported by line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator


class BadRecord(Exception):
    """An input record that cannot be sent; `line` is its 1-based line number in the object."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclasses.dataclass(frozen=True)
class Record:
    line: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Batch:
    body: bytes
    first_line: int
    last_line: int
    #: The records the batch was built from, when they are needed after inference (JoinSource).
    records: tuple[Record, ...] = ()

    @property
    def where(self) -> str:
        if self.first_line == self.last_line:
            return f"line {self.first_line}"
        return f"lines {self.first_line}-{self.last_line}"


def _too_large(limit: int) -> str:
    return (f"the record is larger than MaxPayloadInMB ({limit // (1024 * 1024)} MB); raise MaxPayloadInMB "
            "(0 means no limit) or split the record")


def _line_span(data: bytes | bytearray) -> int:
    """How many lines `data` holds (a last line without a newline counts)."""
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def whole_object(pieces: Iterable[bytes], limit: int | None) -> Iterator[Batch]:
    body = b"".join(pieces)
    if limit is not None and len(body) > limit:
        raise BadRecord(1, f"the object is {len(body)} bytes, larger than MaxPayloadInMB "
                           f"({limit // (1024 * 1024)} MB), and SplitType None sends it whole; use SplitType "
                           "Line or raise MaxPayloadInMB (0 means no limit)")
    if body:
        yield Batch(body, 1, max(1, _line_span(body)))


def line_chunks(pieces: Iterable[bytes], limit: int | None) -> Iterator[Batch]:
    """MultiRecord over lines: newline-aligned chunks of at most `limit` bytes (None: the whole object)."""
    if limit is None:
        yield from whole_object(pieces, None)
        return
    buffer = bytearray()
    line = 1
    for piece in pieces:
        buffer += piece
        while len(buffer) > limit:
            cut = buffer.rfind(b"\n", 0, limit) + 1
            if cut == 0:
                raise BadRecord(line, _too_large(limit))
            with memoryview(buffer) as view:
                body = bytes(view[:cut])
            del buffer[:cut]
            lines = body.count(b"\n")
            yield Batch(body, line, line + lines - 1)
            line += lines
    if buffer.strip():
        yield Batch(bytes(buffer), line, line + _line_span(buffer) - 1)


def lines(pieces: Iterable[bytes]) -> Iterator[Record]:
    """Every non-blank line, without its line ending, with its line number."""
    carry = b""
    number = 1
    for piece in pieces:
        parts = (carry + piece).split(b"\n")
        carry = parts.pop()
        for part in parts:
            text = part.rstrip(b"\r")
            if text.strip():
                yield Record(number, text)
            number += 1
    text = carry.rstrip(b"\r")
    if text.strip():
        yield Record(number, text)


def group(records: Iterable[Record], *, limit: int | None, single: bool,
          payload: Callable[[Record], bytes] = lambda r: r.data, keep_records: bool = False) -> Iterator[Batch]:
    """Requests of one record (`single`) or of as many records as fit in `limit`, newline-separated."""
    pending: list[Record] = []
    bodies: list[bytes] = []
    size = 0

    def flush() -> Batch:
        body = bodies[0] if single else b"\n".join(bodies) + b"\n"
        return Batch(body, pending[0].line, pending[-1].line, tuple(pending) if keep_records else ())

    for record in records:
        data = payload(record)
        if limit is not None and len(data) + 1 > limit:
            raise BadRecord(record.line, _too_large(limit))
        if pending and (single or (limit is not None and size + len(data) + 1 > limit)):
            yield flush()
            pending, bodies, size = [], [], 0
        pending.append(record)
        bodies.append(data)
        size += len(data) + 1
    if pending:
        yield flush()
