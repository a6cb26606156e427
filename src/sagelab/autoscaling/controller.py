"""The scaling controller: performs the alarm actions that name a scaling policy, off the alarm evaluator.

The evaluator calls `notify` for every autoscaling action of an alarm in ALARM (on the transition and on
every round it stays there, as CloudWatch repeats Auto Scaling actions); the controller's own thread asks
the policy to scale and closes the activities whose endpoint has finished changing.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Mapping
from typing import Any

from sagelab.autoscaling.service import ScalingService

POLICY_ARN_PREFIX = "arn:aws:autoscaling:"


class ScalingController:
    def __init__(self, service: ScalingService, tick_seconds: float):
        self.service = service
        self.tick_seconds = max(0.05, tick_seconds)
        self._actions: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def notify(self, action: str, alarm: Mapping[str, Any]) -> bool:
        """Take an alarm action if it names a scaling policy; False leaves it to the caller."""
        if not action.startswith(POLICY_ARN_PREFIX) or ":scalingPolicy:" not in action:
            return False
        self._actions.put((action, dict(alarm)))
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scaling-controller", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                item = self._actions.get(timeout=self.tick_seconds)
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item is None:
                return
            try:
                if item:
                    self.service.act(*item)
                self.service.settle()
            except Exception:  # noqa: BLE001 - one failed action must not end the controller
                traceback.print_exc()

    def close(self) -> None:
        if self._thread is not None:
            self._actions.put(None)
            self._thread.join(timeout=5)
            self._thread = None
