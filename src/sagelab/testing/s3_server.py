"""An external S3-compatible server for tests: moto's standalone server, as its own process on a free port.

It is a real HTTP S3 endpoint (moto[server], the `test` extra), so an `s3://` lake under test talks to it
exactly as it would to MinIO or AWS: through boto3 over the network. Its objects live in its memory and go
when it stops.

Use it from a conftest::

    from sagelab.testing.s3_server import s3_server  # noqa: F401  (a session fixture)

and give each test a lake of its own with `s3_server.new_lake()` (a fresh external bucket), whose `env` and
`settings` a sagelab server or `open_blob_store` takes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagelab.embedded import free_port

#: moto accepts any credentials; these are the ones every client of the test server uses.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"


@dataclasses.dataclass(frozen=True)
class S3Lake:
    """One external bucket (and prefix) on the test server, as the settings of an `s3://` lake."""

    endpoint_url: str
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def settings(self) -> dict[str, str]:
        """Flags for `load_settings`."""
        return {"lake_url": self.url, "lake_endpoint_url": self.endpoint_url, "lake_access_key_id": ACCESS_KEY_ID,
                "lake_secret_access_key": SECRET_ACCESS_KEY, "lake_region": REGION}

    @property
    def env(self) -> dict[str, str]:
        """The same as SAGELAB_* environment variables, for a sagelab server process."""
        return {f"SAGELAB_{name.upper()}": value for name, value in self.settings.items()}


@dataclasses.dataclass
class S3Server:
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A boto3 S3 client of the server itself (not of a sagelab server in front of it)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, ignore_configured_endpoint_urls=True))

    def new_lake(self, prefix: str = "lake") -> S3Lake:
        """A new, empty external bucket for one lake."""
        bucket = f"sagelab-lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return S3Lake(self.endpoint_url, bucket, prefix)

    def start(self, timeout: float = 30) -> S3Server:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answered
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint_url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(folder: Path) -> S3Server:
    """Start moto's server on a free port (retrying when the port is taken between the probe and the start)."""
    last: Exception | None = None
    for _ in range(3):
        server = S3Server(free_port(), folder / "moto.log")
        try:
            return server.start()
        except RuntimeError as failure:
            last = failure
    raise RuntimeError(f"could not start moto's S3 server: {last}")


def moto_installed() -> bool:
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A running moto S3 server for the whole session; skipped where moto[server] is not installed."""
    if not moto_installed():
        pytest.skip("moto[server] is not installed (pip install -e '.[test]')")
    folder = Path(tempfile.mkdtemp(prefix="sagelab-moto-"))
    server = start_server(folder)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
