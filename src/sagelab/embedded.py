"""A sagelab server in a child process, and boto3 clients for it. Used by the demo, tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sagelab.security.credentials import read_credentials_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, home: Path, port: int | None = None, *, env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = (), tls: bool = False):
        self.home = Path(home)
        self.tls = tls
        self.port = port or free_port()
        self.env = env or {}
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.region = "us-east-1"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path | None:
        """The home's self-signed certificate, which clients of a TLS server verify it against."""
        return self.home / "tls" / "cert.pem" if self.tls else None

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def start(self, timeout: float = 60) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sagelab", "server", "--home", str(self.home), "--port", str(self.port),
             *(("--tls",) if self.tls else ()), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sagelab server exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                context = None
                if self.ca_bundle is not None:
                    if not self.ca_bundle.exists():
                        raise OSError("the certificate is not written yet")
                    context = ssl.create_default_context(cafile=str(self.ca_bundle))
                with urllib.request.urlopen(self.url + "/_sagelab/health", timeout=1, context=context) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"sagelab server did not answer within {timeout} s; see {self.log_path}")

    def stop(self, timeout: float = 15) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def credentials(self) -> tuple[str, str]:
        creds = read_credentials_file(self.home / "credentials")
        if creds is None:
            raise RuntimeError(f"no credentials in {self.home}")
        return creds.access_key_id, creds.secret_access_key

    def client_environment(self) -> dict[str, str]:
        """Environment variables that point boto3, the AWS CLI and the SageMaker SDK at this server."""
        from sagelab.client_setup import client_environment
        from sagelab.settings import load_settings

        return client_environment(load_settings({"home": str(self.home), "port": self.port, "tls": self.tls},
                                                environ={}))

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        akid, secret = self.credentials()
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120,
                        s3={"addressing_style": "path"})
        return boto3.client(service, endpoint_url=self.url, region_name=kwargs.pop("region_name", self.region),
                            aws_access_key_id=kwargs.pop("aws_access_key_id", akid),
                            aws_secret_access_key=kwargs.pop("aws_secret_access_key", secret),
                            config=kwargs.pop("config", config),
                            verify=kwargs.pop("verify", str(self.ca_bundle) if self.ca_bundle else None), **kwargs)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
