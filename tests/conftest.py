"""Shared fixtures: a real sagelab server on 127.0.0.1 and real boto3 clients for it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from sagelab.embedded import ServerProcess
from sagelab.testing.postgres import postgres_cluster  # noqa: F401 - a session fixture


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--metadata-store", choices=("sqlite", "postgresql"), default="sqlite",
                     help="the metadata database of the shared session server: its SQLite file (the default), or "
                          "a database on a PostgreSQL cluster the session starts")


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {}
    if request.config.getoption("--metadata-store") == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        env["SAGELAB_DATABASE_URL"] = cluster.create_database(f"session_{uuid.uuid4().hex[:10]}")
    proc = ServerProcess(tmp_path_factory.mktemp("sagelab-home"), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def sm(server: ServerProcess):
    return server.client("sagemaker")


@pytest.fixture(scope="session")
def s3(server: ServerProcess):
    return server.client("s3")


@pytest.fixture(scope="session")
def glue(server: ServerProcess):
    return server.client("glue")


@pytest.fixture(scope="session")
def athena(server: ServerProcess):
    return server.client("athena")


@pytest.fixture(scope="session")
def kms(server: ServerProcess):
    return server.client("kms")


@pytest.fixture(scope="session")
def cloudtrail(server: ServerProcess):
    return server.client("cloudtrail")


@pytest.fixture
def sdk_env(server, monkeypatch, tmp_path):
    """The environment a user sets (`eval "$(sagelab env)"`): the SDK reads it when a Session is made."""
    from helpers import client_env

    for name in [n for n in os.environ if n.startswith(("AWS_", "SAGEMAKER_"))]:
        monkeypatch.delenv(name)
    for name, value in client_env(server, tmp_path).items():
        if name.startswith(("AWS_", "SAGEMAKER_")):
            monkeypatch.setenv(name, value)
    # boto3's default session keeps the credentials it first resolved: an earlier test's server's key.
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return server


@pytest.fixture
def bucket(s3) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
