"""Every blob store passes the blob store kit: the folder lake, and the lake in an external S3 store (moto's
server, a real HTTP S3 endpoint started once for the session)."""

from __future__ import annotations

import pytest

from sagelab.errors import ValidationError
from sagelab.lake.blobs import LocalBlobStore, open_blob_store
from sagelab.lake.encryption import Encryption
from sagelab.lake.s3_store import S3BlobStore
from sagelab.settings import load_settings
from sagelab.testing import blob_kit
from sagelab.testing.s3_server import s3_server  # noqa: F401  (a session fixture)


def _s3_opener(server, tmp_path):
    lake = server.new_lake(prefix="conformance/lake")
    settings = load_settings({"home": str(tmp_path / "home"), **lake.settings}, environ={})
    return lambda keys: open_blob_store(settings, keys)


@pytest.mark.parametrize("check", blob_kit.CHECKS, ids=lambda c: c.__name__)
def test_local_blob_store(check, tmp_path):
    check(lambda keys: LocalBlobStore(tmp_path / "lake", keys))


@pytest.mark.parametrize("check", blob_kit.CHECKS, ids=lambda c: c.__name__)
def test_s3_blob_store(check, s3_server, tmp_path):  # noqa: F811
    check(_s3_opener(s3_server, tmp_path))


def test_s3_store_keeps_everything_in_the_external_bucket(s3_server, tmp_path):  # noqa: F811
    """Objects, their facts and their versions are all objects of the external bucket, under the prefix; the
    bytes of an object encrypted at rest are only ciphertext there."""
    lake = s3_server.new_lake(prefix="team/lake")
    store = open_blob_store(load_settings({"home": str(tmp_path), **lake.settings}, environ={}), blob_kit.KitKeys())
    assert isinstance(store, S3BlobStore)
    store.create_bucket("data")
    secret = b"the plaintext nobody may see at rest " * 100
    store.put("data", "plain/a.csv", [b"x,y\n1,2\n"])
    store.put("data", "sealed.bin", [secret], encryption=Encryption("AES256"))
    external = s3_server.client()
    keys = [o["Key"] for o in external.list_objects_v2(Bucket=lake.bucket)["Contents"]]
    assert all(k.startswith("team/lake/data/") for k in keys)
    assert "team/lake/data/@bucket.json" in keys and "team/lake/data/plain/a.csv/@meta.json" in keys
    blobs = [k for k in keys if "/@data/" in k]
    assert len(blobs) == 2
    stored = {k: external.get_object(Bucket=lake.bucket, Key=k)["Body"].read() for k in blobs}
    assert b"x,y\n1,2\n" in stored.values()
    assert not any(secret[:40] in body for body in stored.values())
    assert store.local_path("data", "plain/a.csv") is None  # readers go through `read` (lake.files)
    assert store.staging_dir().is_relative_to(tmp_path)


@pytest.mark.parametrize(("flags", "named"), [
    ({"lake_url": "gs://bucket/lake"}, "lake_url"),
    ({"lake_url": "s3://Not_A_Bucket/lake"}, "lake_url"),
    ({"lake_url": "s3://bucket/lake", "lake_endpoint_url": "localhost:9000"}, "lake_endpoint_url"),
    ({"lake_url": "s3://bucket/lake", "lake_access_key_id": "only-the-id"}, "lake_secret_access_key"),
])
def test_bad_lake_settings_are_refused_by_name(flags, named, tmp_path):
    with pytest.raises(ValidationError, match=named):
        open_blob_store(load_settings({"home": str(tmp_path), **flags}, environ={}))
