"""The recorder: turns each answered call into an event and hands it to the group-committed history."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sagelab.cloudtrail.history import HistoryWriter
from sagelab.cloudtrail.records import ApiCall, event_record, username


class Recorder:
    def __init__(self, *, writer: HistoryWriter, wants_data_events: Callable[[], bool]):
        self.writer = writer
        self.wants_data_events = wants_data_events

    def record(self, call: ApiCall) -> threading.Event | None:
        """Queue the call's event; the returned event is set once it is durable (None: nothing recorded)."""
        if not call.management and not self.wants_data_events():
            return None
        record = event_record(call)
        columns = {"event_time": time.time(), "username": username(call.caller),
                   "access_key_id": call.caller.access_key_id if call.caller else "", "resources": call.resources}
        return self.writer.submit(record, columns)
