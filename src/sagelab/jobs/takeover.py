"""Taking over the work of a server that died, while the others sharing its database live on.

Start-up recovery (`Platform.recover_left_behind`) covers a server that restarts alone. With several servers
on one PostgreSQL database, the one that dies is not restarted by anyone: every live server looks, every
`takeover_scan_seconds`, at the servers named by the leases of active work, and for each one that is gone
(`ServerPresence.gone`) settles or resumes what it left exactly as a restart would, for its resources only.
The dead server's job processes died with it (`compute.lifetime`), and a new lease fences any late write.
The same look keeps this server serving the endpoints the others made (`EndpointService.sync_with_store`),
so that an endpoint answers on every server and outlives the one that created it.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence

from sagelab.storage.presence import ServerPresence
from sagelab.storage.resources import ResourceStore


class TakeoverWatch:
    """`active` maps each resource kind taken over to its active statuses; `take_over(server id)` settles or
    resumes what that server left; `each_scan` is what else keeps this server in step with the others, done
    at every look (the endpoints they made, served here too)."""

    def __init__(self, *, presence: ServerPresence, resources: ResourceStore,
                 active: Mapping[str, Iterable[str]], take_over: Callable[[str], None], every: float,
                 each_scan: Sequence[Callable[[], None]] = ()):
        self.presence = presence
        self.resources = resources
        self.active = {kind: tuple(statuses) for kind, statuses in active.items()}
        self.take_over = take_over
        self.every = every
        self.each_scan = tuple(each_scan)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="takeover-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                for step in self.each_scan:
                    step()
                self.scan_once()
            except Exception:  # noqa: BLE001 - a failed look (the database restarting) is retried next time
                traceback.print_exc(file=sys.stderr)

    def scan_once(self) -> list[str]:
        """Take over every gone server's work; returns the servers taken over."""
        taken = []
        for owner in sorted(self.resources.lease_owners(self.active) - {self.presence.server_id}):
            with self.presence.gone(owner) as gone:
                if gone and not self._stop.is_set():
                    self.take_over(owner)
                    taken.append(owner)
        return taken

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
