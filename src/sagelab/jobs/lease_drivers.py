"""Work that a server thread drives for as long as it holds a resource's lease (tuning jobs, pipeline
executions), and the pool of such drivers a service keeps.

A driver's thread owns the lease: once it is lost (the work was stopped, or another server took it over), the
thread leaves quietly. Closing the server halts the drivers without settling their resources, so that the next
server takes each lease over (`DriverPool.recover`) and resumes the work where it stood.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from sagelab.storage.resources import LeaseLost, NotFound, Resource, ResourceStore


class LeaseDriver:
    """One resource's driver thread. Subclasses give `_run` (the loop, which watches `_halt` and waits on
    `_wake`) and `_abandon` (settle the resource when the driver itself fails)."""

    #: The thread's name prefix ("tuning") and how a failure names the driver ("the tuning job's driver").
    thread_prefix: ClassVar[str]
    described_as: ClassVar[str]

    def __init__(self, name: str, lease: str):
        self.name = name
        self.lease = lease
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"{self.thread_prefix}-{name}", daemon=True)

    # --- control from the service ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def halt(self, timeout: float = 10) -> None:
        """Leave the resource as it stands (the server is closing); a later server resumes it."""
        self._halt.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the loop -------------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._run()
        except (LeaseLost, NotFound):
            return
        except Exception as exc:  # noqa: BLE001 - a driver bug must end the work, not leave it active forever
            traceback.print_exc(file=sys.stderr)
            self._abandon(f"InternalFailure: {self.described_as} failed: {type(exc).__name__}: {exc}")

    def _run(self) -> None:
        raise NotImplementedError

    def _abandon(self, reason: str) -> None:
        raise NotImplementedError


D = TypeVar("D", bound=LeaseDriver)


class DriverPool(Generic[D]):
    """The drivers of one kind of resource: at most one per resource, started, woken, taken over and halted
    together. `make_driver(name, lease)` builds a driver; `active` are the statuses whose work goes on."""

    def __init__(self, resources: ResourceStore, kind: str, active: tuple[str, ...],
                 make_driver: Callable[[str, str], D]):
        self.resources = resources
        self.kind = kind
        self.active = active
        self.make_driver = make_driver
        self._drivers: dict[str, D] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self, name: str, lease: str) -> None:
        """Drive `name` under `lease` (already written on the resource); a previous driver of it halts."""
        with self._lock:
            if self._closed:
                return
            previous = self._drivers.get(name)
            if previous is not None and previous.alive:
                previous.halt(timeout=0)
            driver = self.make_driver(name, lease)
            self._drivers[name] = driver
        driver.start()

    def take_over(self, name: str, seen: str | None = None) -> bool:
        """Claim a new lease on an active resource and drive it; False when it is no longer active, or when
        its lease is no longer `seen` (someone else took it over first)."""
        lease = self.resources.new_lease()

        def claim(r: Resource) -> None:
            if r.status in self.active:
                r.lease = lease

        try:
            res = self.resources.update(self.kind, name, claim, lease=seen)
        except (LeaseLost, NotFound):
            return False
        if res.lease != lease:
            return False
        self.start(name, lease)
        return True

    def nudge(self, name: str, *, leased: bool) -> None:
        """The resource changed (a stop was asked): its driver looks at once; with none alive here, a resource
        that still holds a lease (a previous server's) is taken over so that someone acts on the change."""
        with self._lock:
            driver = self._drivers.get(name)
        if driver is not None and driver.alive:
            driver.wake()
        elif leased:
            self.take_over(name)

    def wake_all(self) -> None:
        """Something any driver may be waiting for happened (a job ended): waking one that has no such job
        costs it one look."""
        with self._lock:
            drivers = list(self._drivers.values())
        for driver in drivers:
            driver.wake()

    def recover(self, left_by: str | None = None) -> int:
        """Resume the resources a stopped server left active: all of them, or those of the server `left_by`."""
        return sum(1 for res in self.resources.left_behind(self.kind, self.active, left_by)
                   if self.take_over(res.name, res.lease))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            drivers = list(self._drivers.values())
        for driver in drivers:
            driver.halt()
