"""`sagelab server --tls`: HTTPS with a self-signed certificate that boto3 verifies through AWS_CA_BUNDLE."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
import urllib.request

import boto3
import pytest
from botocore.exceptions import SSLError

from sagelab.embedded import ServerProcess


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("tls-home"), tls=True).start()
    yield proc
    proc.stop()


def test_boto3_verifies_the_server_through_the_ca_bundle_sagelab_env_prints(tls_server, monkeypatch):
    home = tls_server.home
    assert stat.S_IMODE((home / "tls" / "key.pem").stat().st_mode) == 0o600
    printed = subprocess.run([sys.executable, "-m", "sagelab", "env", "--home", str(home), "--port",
                              str(tls_server.port), "--tls"], capture_output=True, text=True, check=True).stdout
    exports = dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines())
    assert exports["AWS_CA_BUNDLE"] == str(home / "tls" / "cert.pem")
    assert exports["AWS_ENDPOINT_URL"] == f"https://127.0.0.1:{tls_server.port}"
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # A session of its own: boto3's default session would keep this server's credentials for later tests.
    session = boto3.session.Session()
    s3 = session.client("s3")  # endpoint, credentials, region and CA bundle all from the environment
    s3.create_bucket(Bucket="over-tls")
    assert "over-tls" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # The call arrived over TLS: its CloudTrail record says so (and IAM can read aws:SecureTransport).
    events = session.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}])["Events"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["tlsDetails"] == {"clientProvidedHostHeader": f"127.0.0.1:{tls_server.port}"}


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_server):
    akid, secret = tls_server.credentials()
    client = boto3.session.Session().client("s3", endpoint_url=tls_server.url, region_name="us-east-1",
                                            aws_access_key_id=akid, aws_secret_access_key=secret, verify=True)
    env_bundle = os.environ.pop("AWS_CA_BUNDLE", None)
    try:
        with pytest.raises(SSLError):
            client.list_buckets()
    finally:
        if env_bundle is not None:
            os.environ["AWS_CA_BUNDLE"] = env_bundle
    context = ssl.create_default_context(cafile=str(tls_server.ca_bundle))
    with urllib.request.urlopen(f"https://localhost:{tls_server.port}/_sagelab/health", context=context) as r:
        assert r.status == 200  # the certificate names localhost as well as 127.0.0.1


def test_the_aws_cli_verifies_the_server_through_the_same_environment(tls_server):
    printed = subprocess.run([sys.executable, "-m", "sagelab", "env", "--home", str(tls_server.home), "--port",
                              str(tls_server.port), "--tls"], capture_output=True, text=True, check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(line.removeprefix("export ").split("=", 1) for line in printed.splitlines())
    done = subprocess.run([sys.executable, "-m", "awscli", "s3api", "list-buckets", "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Buckets" in json.loads(done.stdout)
