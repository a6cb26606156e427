"""TransformService without a server: settling jobs a stopped server left active."""

from __future__ import annotations

from sagelab.platform import Platform
from sagelab.settings import load_settings
from sagelab.transform import states
from sagelab.transform.service import SERVER_STOPPED


def test_recover_settles_jobs_left_active(tmp_path):
    platform = Platform(load_settings({"home": str(tmp_path), "engine": "inline"}, environ={})).open()
    try:
        for name, status in (("running", "InProgress"), ("stopping", "Stopping"), ("done", "Completed")):
            platform.resources.insert(states.KIND, name, f"arn:{name}", status,
                                      {"TransformJobName": name, "TransformJobStatus": status},
                                      lease=None if status == "Completed" else "lease")
        assert platform.transforms.recover() == 2
        running = platform.transforms.describe("running")
        assert running["TransformJobStatus"] == "Failed" and running["FailureReason"] == SERVER_STOPPED
        assert "TransformEndTime" in running
        assert platform.transforms.describe("stopping")["TransformJobStatus"] == "Stopped"
        assert platform.transforms.describe("done")["TransformJobStatus"] == "Completed"
        assert platform.resources.get(states.KIND, "running").lease is None
    finally:
        platform.close()
