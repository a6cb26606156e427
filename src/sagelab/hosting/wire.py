"""The frame format between the server and its serving instances, over a Unix socket.

A frame is `!II` (header length, body length), a JSON header, then the raw body. One request and one
response per exchange; a connection carries one exchange at a time and is reused.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

_PREFIX = struct.Struct("!II")


def encode(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(head), len(body)) + head + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    head_len, body_len = _PREFIX.unpack(await reader.readexactly(_PREFIX.size))
    data = await reader.readexactly(head_len + body_len)
    return json.loads(data[:head_len]), data[head_len:]


def exchange_blocking(socket_path: str, header: dict[str, Any], body: bytes,
                      timeout: float) -> tuple[dict[str, Any], bytes]:
    """One exchange on a connection of its own, for callers off the event loop (the async inference worker)."""
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(encode(header, body))
        head_len, body_len = _PREFIX.unpack(_receive(sock, _PREFIX.size))
        data = _receive(sock, head_len + body_len)
    return json.loads(data[:head_len]), data[head_len:]


def _receive(sock: Any, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError(f"the serving instance closed the connection with {left} bytes still to come")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
