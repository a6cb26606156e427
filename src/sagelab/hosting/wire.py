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
