"""Every blob store passes the blob store kit: the folder lake, and the lake in an external S3 store (moto's
server, a real HTTP S3 endpoint started once for the session)."""

from __future__ import annotations

import dataclasses
import random
import socket

import pytest

from sagelab.errors import S3Error, ValidationError
from sagelab.lake.blobs import LocalBlobStore, open_blob_store
from sagelab.lake.encryption import Encryption
from sagelab.lake.objects import ObjectInfo
from sagelab.lake.s3_store import S3BlobStore
from sagelab.lake.versions import DeleteOutcome, VersionEntry
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


def test_a_lake_bucket_the_store_lacks_or_a_store_that_is_not_there_is_refused(s3_server, tmp_path):  # noqa: F811
    lake = s3_server.new_lake()
    missing = {**lake.settings, "lake_url": "s3://no-such-lake-bucket/lake"}
    with pytest.raises(ValidationError, match="'lake_url' names the bucket 'no-such-lake-bucket'"):
        open_blob_store(load_settings({"home": str(tmp_path), **missing}, environ={}))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nowhere = {**lake.settings, "lake_endpoint_url": f"http://127.0.0.1:{probe.getsockname()[1]}"}
        with pytest.raises(ValidationError, match="lake_endpoint_url"):
            open_blob_store(load_settings({"home": str(tmp_path), **nowhere}, environ={}))


def _normal(value, ids: list[str]):
    """A store's answer with what may differ between stores (times, the spelling of version ids) taken out:
    version ids become their order of first appearance in this store."""
    if isinstance(value, ObjectInfo):
        facts = dataclasses.asdict(value)
        facts.pop("last_modified")
        facts["version_id"] = _ordinal(facts["version_id"], ids)
        return facts
    if isinstance(value, VersionEntry):
        return _normal(value.info, ids), value.is_latest
    if isinstance(value, DeleteOutcome):
        return _ordinal(value.version_id, ids), value.delete_marker
    if isinstance(value, list):
        return [_normal(v, ids) for v in value]
    return value


def _ordinal(version_id: str | None, ids: list[str]) -> object:
    if version_id in (None, "null"):
        return version_id
    if version_id not in ids:
        ids.append(version_id)
    return ids.index(version_id)


@pytest.mark.parametrize("seed", [19, 2026])
def test_s3_store_answers_as_the_folder_store_does_op_for_op(seed, s3_server, tmp_path):  # noqa: F811
    """The same random operations on both stores give the same answers, errors and listings."""
    local = LocalBlobStore(tmp_path / "lake")
    remote = _s3_opener(s3_server, tmp_path)(None)
    stores = {"local": (local, []), "s3": (remote, [])}
    rng = random.Random(seed)
    keys = ["a", "a/b", "b/", "@c"]

    def op_for(step: int):
        # Unversioned first, then versioning on, suspended, and on again.
        status = {15: "Enabled", 40: "Suspended", 60: "Enabled"}.get(step)
        kind = "versioning" if status else rng.choice(["put", "put", "put", "delete", "delete-version", "tags",
                                                       "head", "read"])
        key, pick = rng.choice(keys), rng.random()
        body = [f"{step}".encode()] * rng.randint(0, 3)

        def run(store, ids):
            version = ids[int(pick * len(ids))] if ids and pick < 0.8 else ("null" if pick < 0.9 else None)
            if kind == "put":
                return store.put("bkt", key, body, metadata={"step": str(step)})
            if kind == "delete":
                return store.delete("bkt", key)
            if kind == "delete-version":
                return store.delete("bkt", key, version_id=version or "null")
            if kind == "tags":
                return store.set_tags("bkt", key, {"step": str(step)}, version_id=version)
            if kind == "head":
                return store.head("bkt", key, version_id=version)
            if kind == "read":
                return b"".join(store.read("bkt", key, version_id=version))
            store.set_bucket_config("bkt", "versioning", status)
            return None
        return kind, run

    def answer(run, store, ids):
        try:
            return _normal(run(store, ids), ids)
        except S3Error as error:
            return error.code, error.headers and "with headers"

    for store, _ in stores.values():
        store.create_bucket("bkt")
    for step in range(80):
        kind, run = op_for(step)
        answers = {name: answer(run, store, ids) for name, (store, ids) in stores.items()}
        assert answers["local"] == answers["s3"], (step, kind)
        if step % 7 == 6:
            listings = {name: (_normal(list(store.list("bkt")), ids), _normal(list(store.list_versions("bkt")), ids))
                        for name, (store, ids) in stores.items()}
            assert listings["local"] == listings["s3"], step
