"""Managed spot training: interruptions, made real.

A spot job's process can be interrupted two ways: an admin asks for it (`request_interruption`, behind
`sagelab spot-interrupt <job>`), or the `spot_interruption_after_seconds` setting interrupts every spot
job's first attempt that long after its training began. Either way the job's process notices within
`POLL_SECONDS`, uploads its checkpoints (SageMaker's two-minute notice, shortened), records
`_Interrupted` and SecondaryStatus `Interrupted` on the job, and kills its own process group, the script
with it, as a reclaimed instance would be. The service then sees the task end with that mark and starts a
new attempt (`TrainingService`), which restores the checkpoints before the script starts again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from sagelab.errors import ValidationError
from sagelab.storage.resources import ResourceStore
from sagelab.training import states

POLL_SECONDS = 0.5
#: Set by an admin on the job's document; the job's process acts on it.
REQUESTED = "_InterruptRequested"
#: Set by the job's process as it goes down; tells the service to restart rather than settle.
INTERRUPTED = "_Interrupted"
#: How many attempts the job has started; the first is 1.
ATTEMPT = "_Attempt"
#: When the current attempt's work began: what BillableTimeInSeconds counts from.
ATTEMPT_START = "_AttemptStartTime"


def request_interruption(resources: ResourceStore, name: str) -> None:
    """Ask a running spot job to be interrupted (as if its spot capacity were reclaimed)."""
    res = resources.get(states.KIND, name)
    if res is None:
        raise ValidationError(f"Requested resource not found: training job {name!r} does not exist.")
    if not res.doc.get("EnableManagedSpotTraining"):
        raise ValidationError(f"Training job {name!r} does not use managed spot training "
                              "(EnableManagedSpotTraining); only spot jobs can be interrupted.")
    if res.status != "InProgress":
        raise ValidationError(f"Training job {name!r} is {res.status}; only InProgress jobs can be interrupted.")
    resources.update(states.KIND, name, lambda r: r.doc.update({REQUESTED: time.time()}))


class InterruptionWatch:
    """In the job's process: waits for an interruption and carries it out."""

    def __init__(self, *, is_requested: Callable[[], bool], after_seconds: float | None,
                 before_exit: Callable[[], None], record: Callable[[str], None]):
        self.is_requested = is_requested
        #: Seconds into training after which this attempt is interrupted by the setting; None: never.
        self.after_seconds = after_seconds
        self.before_exit = before_exit
        self.record = record
        self._training_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="spot-interruption", daemon=True)
        self._thread.start()

    def training_started(self) -> None:
        self._training_since = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _due(self) -> str | None:
        if self.is_requested():
            return "interrupted by request (sagelab spot-interrupt)"
        if (self.after_seconds is not None and self._training_since is not None
                and time.monotonic() - self._training_since >= self.after_seconds):
            return f"interrupted {self.after_seconds:g} s into training (setting spot_interruption_after_seconds)"
        return None

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            reason = self._due()
            if reason is None:
                continue
            self.before_exit()
            self.record(reason)
            # The local engine runs each job's process as the leader of its own group, the script in it:
            # killing the group is what a reclaimed instance does to both.
            if os.getpgrp() == os.getpid():
                os.killpg(os.getpgrp(), signal.SIGKILL)
            os._exit(1)  # pragma: no cover - the group's kill ends this process first
