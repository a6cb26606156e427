"""A sagelab server whose lake is an external S3 store (moto's server), and boto3 clients of both.

These fixtures override the root conftest's `server`, `s3`, `sm`, `glue` and `athena` for the tests of this
folder (each under its own definition, so no session-cached client of the default server is reused), and
the shared helpers (`bucket`, `lake_helpers`) run against this server unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sagelab.embedded import ServerProcess
from sagelab.testing.s3_server import S3Lake, S3Server, s3_server  # noqa: F401  (a session fixture)


@pytest.fixture(scope="session")
def lake(s3_server: S3Server) -> S3Lake:  # noqa: F811
    return s3_server.new_lake(prefix="sagelab/lake")


@pytest.fixture(scope="session")
def external(s3_server: S3Server):  # noqa: F811
    """A boto3 client of the external store itself, to see what really is there."""
    return s3_server.client()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, lake: S3Lake) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("sagelab-s3lake-home"), env=lake.env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def s3(server: ServerProcess):
    return server.client("s3")


@pytest.fixture(scope="session")
def sm(server: ServerProcess):
    return server.client("sagemaker")


@pytest.fixture(scope="session")
def glue(server: ServerProcess):
    return server.client("glue")


@pytest.fixture(scope="session")
def athena(server: ServerProcess):
    return server.client("athena")

