"""Per-shard write limits, only when a setting asks for them: 1,000 records and 1 MiB per second per shard."""

from __future__ import annotations

import threading
from collections.abc import Callable

RECORDS_PER_SECOND = 1000
BYTES_PER_SECOND = 1 << 20


class ShardThrottle:
    """A fixed one-second window per shard, as AWS's ProvisionedThroughputExceeded is documented."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._windows: dict[tuple[str, int], tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def admit(self, stream: str, shard: int, size: int, second: int | None = None) -> bool:
        """Count one record of `size` bytes against the shard's current second (`second`, when one request
        gives all its records the same second), or refuse it."""
        second = int(self.clock()) if second is None else second
        with self._lock:
            window, records, used = self._windows.get((stream, shard), (second, 0, 0))
            if window != second:
                records, used = 0, 0
            if records + 1 > RECORDS_PER_SECOND or used + size > BYTES_PER_SECOND:
                return False
            self._windows[(stream, shard)] = (second, records + 1, used + size)
            return True
