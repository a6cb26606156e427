"""The app's observers: each answered or refused call is seen once, before its answer is sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sagelab.api.app import Answered, SagelabApp
from sagelab.api.faces import build_faces
from sagelab.platform import Platform
from sagelab.settings import load_settings


def _call(app: SagelabApp, target: str, body: bytes, order: list[str]) -> int:
    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [(b"x-amz-target", target.encode()), (b"host", b"localhost")], "client": ("10.1.2.3", 5)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        if message["type"] == "http.response.start":
            order.append("sent")
            status.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return status[0]


def test_observers_see_answered_and_refused_calls_before_the_answer_is_sent(tmp_path: Path):
    platform = Platform(load_settings({"home": str(tmp_path / "home"), "auth": False}, environ={})).open()
    seen: list[Answered] = []
    order: list[str] = []

    def observer(answered: Answered):
        seen.append(answered)
        order.append("observed")
        return lambda: order.append("waited")  # runs off the loop; the answer waits for it

    app = SagelabApp(build_faces(platform), None, default_region="us-east-1", account_id=platform.account_id,
                     observers=[observer])
    try:
        assert _call(app, "Logs_20140328.DescribeLogGroups", b"{}", order) == 200
        assert _call(app, "Logs_20140328.DescribeNothing", b"{}", order) == 400
    finally:
        platform.close()
    answered, refused = seen
    assert answered.call is not None and answered.call.operation.name == "DescribeLogGroups"
    assert (answered.status, answered.error_code, answered.request.client_ip) == (200, None, "10.1.2.3")
    assert answered.table is not None and answered.table.model_name == "logs"
    assert json.loads(answered.response.body) == {"logGroups": []}
    assert refused.call is None and refused.status == 400
    assert refused.error_code == "UnknownOperationException" and "DescribeNothing" in refused.error_message
    assert order == ["observed", "waited", "sent"] * 2
