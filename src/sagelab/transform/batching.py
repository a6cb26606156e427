"""How an input object becomes inference requests (mini-batches), per SplitType and BatchStrategy.

- SplitType None: the whole object is one request.
- SplitType Line, MultiRecord: as many whole lines as fit in MaxPayloadInMB per request. The object is cut
  at the last newline before the limit, by bytes: no per-record Python work, so large files stream at the
  speed of the model.
- SplitType Line, SingleRecord: one line per request (blank lines are skipped).
- SplitType RecordIO: the object is cut into recordIO records (magic, length, payload, padding); MultiRecord
  sends as many whole records as fit in MaxPayloadInMB per request (a valid recordIO body), SingleRecord one.
  Batches name their records by number (`first_line` and `Record.line` count records, from 1).
- With DataProcessing, records are handled one by one (filtered, remembered for the join), then grouped
  into requests the same way.

Requests cut by bytes do not count their lines (that would cost time on the hot path); when an error must
name a line, `line_at` counts them from the start of the object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator


class BadRecord(Exception):
    """An input record that cannot be sent, named by its 1-based `line`, or by the byte `offset` where its
    request starts when the line is not known yet."""

    def __init__(self, message: str, *, line: int | None = None, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.line = line
        self.offset = offset


@dataclasses.dataclass(frozen=True)
class Record:
    line: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Batch:
    body: bytes
    #: Where the body starts in the (decompressed) object, in bytes.
    offset: int = 0
    #: The line number of the body's first line; None when the batch was cut by bytes (see `line_at`).
    first_line: int | None = None
    #: The records the batch was built from, when they are needed after inference (JoinSource).
    records: tuple[Record, ...] = ()


def line_span(data: bytes) -> int:
    """How many lines `data` holds (a last line without a newline counts)."""
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def line_at(pieces: Iterable[bytes], offset: int) -> int:
    """The 1-based number of the line that starts at byte `offset` of the object read as `pieces`."""
    newlines = 0
    for piece in pieces:
        if offset <= 0:
            break
        newlines += piece.count(b"\n", 0, offset)
        offset -= len(piece)
    return newlines + 1


def _too_large(limit: int) -> str:
    return (f"the record is larger than MaxPayloadInMB ({limit // (1024 * 1024)} MB); raise MaxPayloadInMB "
            "(0 means no limit) or split the record")


def whole_object(pieces: Iterable[bytes], limit: int | None) -> Iterator[Batch]:
    body = b"".join(pieces)
    if limit is not None and len(body) > limit:
        raise BadRecord(f"the object is {len(body)} bytes, larger than MaxPayloadInMB ({limit // (1024 * 1024)} "
                        "MB), and SplitType None sends it whole; use SplitType Line or raise MaxPayloadInMB (0 "
                        "means no limit)", line=1)
    if body:
        yield Batch(body, 0, 1)


def line_chunks(pieces: Iterable[bytes], limit: int | None) -> Iterator[Batch]:
    """MultiRecord over lines: newline-aligned chunks of at most `limit` bytes (None: the whole object).

    Each chunk is copied once (pieces of about `limit` bytes make the rest of the work slicing).
    """
    if limit is None:
        yield from whole_object(pieces, None)
        return
    carry = b""  # the start of the next chunk: bytes read but not sent yet
    offset = 0  # where `carry` starts in the object
    for piece in pieces:
        start = 0  # piece[:start] is already sent
        while len(carry) + len(piece) - start > limit:
            room = limit - len(carry)
            cut = piece.rfind(b"\n", start, start + room) + 1 if room > 0 else 0
            if cut:
                body = b"".join((carry, memoryview(piece)[start:cut])) if carry else piece[start:cut]
                start, carry = cut, b""
            else:  # no newline of this piece fits: send the carry up to its own last newline
                end = carry.rfind(b"\n") + 1
                if not end:
                    raise BadRecord(_too_large(limit), offset=offset)
                body, carry = carry[:end], carry[end:]
            yield Batch(body, offset)
            offset += len(body)
        carry = b"".join((carry, memoryview(piece)[start:])) if carry else piece[start:]
    if carry.strip():
        yield Batch(carry, offset)


def recordio_batches(pieces: Iterable[bytes], limit: int | None, *, single: bool) -> Iterator[Batch]:
    """Requests of whole recordIO records: one each (`single`) or as many as fit in `limit` bytes."""
    from sagelab.algorithms.first_party.recordio import RecordIOError, iter_frames

    pending: list[Record] = []
    size = 0
    offset = 0  # where the pending records start in the object
    number = 1
    frames = iter_frames(pieces)
    while True:
        try:
            frame = next(frames, None)
        except RecordIOError as exc:
            raise BadRecord(f"the object is not valid recordIO: {exc.why}", line=exc.index) from None
        if frame is None:
            break
        if limit is not None and len(frame) > limit:
            raise BadRecord(_too_large(limit), line=number)
        if pending and (single or (limit is not None and size + len(frame) > limit)):
            yield Batch(b"".join(r.data for r in pending), offset, pending[0].line, tuple(pending))
            offset += size
            pending, size = [], 0
        pending.append(Record(number, frame))
        size += len(frame)
        number += 1
    if pending:
        yield Batch(b"".join(r.data for r in pending), offset, pending[0].line, tuple(pending))


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
        return Batch(body, first_line=pending[0].line, records=tuple(pending) if keep_records else ())

    for record in records:
        data = payload(record)
        if limit is not None and len(data) + 1 > limit:
            raise BadRecord(_too_large(limit), line=record.line)
        if pending and (single or (limit is not None and size + len(data) + 1 > limit)):
            yield flush()
            pending, bodies, size = [], [], 0
        pending.append(record)
        bodies.append(data)
        size += len(data) + 1
    if pending:
        yield flush()
