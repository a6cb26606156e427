"""One server for the CloudWatch tests, evaluating alarms every second rather than every minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sagelab.embedded import ServerProcess


@pytest.fixture(scope="session")
def cw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("cloudwatch-home"),
                         env={"SAGELAB_ALARM_EVALUATION_SECONDS": "1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def cw(cw_server: ServerProcess):
    return cw_server.client("cloudwatch")
