"""Conformance kit for the lake's `BlobStore`: every store sagelab can open must pass each check in `CHECKS`.

A check takes `open_store(data_keys)`, which opens one lake, empty when the check begins (each call opens that
same lake again, with those data keys or none, as a job process opens the server's), and drives it the way
the S3 face, jobs and Athena do. What a check asserts is the folder store's behaviour,
which is S3's: the same `ObjectInfo`, the same errors, the same order of listings.

Objects encrypted at rest need a `DataKeys`; `KitKeys` is a small one sealing data keys under a key of its
own, so the kit needs no KMS (the server tests cover KMS).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Mapping

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.encryption import CHUNK, DataKeys, Encryption

OpenStore = Callable[[DataKeys | None], BlobStore]


class KitKeys:
    """Data keys sealed with AES-GCM under one random key, bound to the object's ARN."""

    def __init__(self) -> None:
        self._aead = AESGCM(secrets.token_bytes(32))

    def generate(self, algorithm: str, kms_key_id: str | None, object_arn: str) -> tuple[bytes, dict[str, str]]:
        plain = secrets.token_bytes(32)
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, plain, object_arn.encode())
        facts = {"algorithm": algorithm, "data_key": base64.b64encode(sealed).decode()}
        if kms_key_id:
            facts["kms_key_arn"] = kms_key_id
        return plain, facts

    def unwrap(self, sealed: Mapping[str, str], object_arn: str) -> bytes:
        blob = base64.b64decode(sealed["data_key"])
        return self._aead.decrypt(blob[:12], blob[12:], object_arn.encode())


def _read(store: BlobStore, bucket: str, key: str, *args, **kwargs) -> bytes:
    return b"".join(store.read(bucket, key, *args, **kwargs))


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(S3Error) as caught:
        result = call()
        if hasattr(result, "__next__"):
            list(result)  # type: ignore[call-overload]
    return caught.value.code


def _bucket(store: BlobStore, name: str = "kit-bucket") -> str:
    store.create_bucket(name)
    return name


# --- checks ------------------------------------------------------------------------------------------
def check_buckets(open_store: OpenStore) -> None:
    store = open_store(None)
    assert store.list_buckets() == []
    created = store.create_bucket("kit-b")
    store.create_bucket("kit-a")
    assert store.head_bucket("kit-b") == created
    assert [b.name for b in store.list_buckets()] == ["kit-a", "kit-b"]
    assert _code(lambda: store.create_bucket("kit-a")) == "BucketAlreadyOwnedByYou"
    assert _code(lambda: store.create_bucket("Not_Valid")) == "InvalidBucketName"
    store.put("kit-b", "k", [b"x"])
    assert _code(lambda: store.delete_bucket("kit-b")) == "BucketNotEmpty"
    store.delete("kit-b", "k")
    store.delete_bucket("kit-b")
    assert [b.name for b in store.list_buckets()] == ["kit-a"]
    for call in (lambda: store.head_bucket("kit-b"), lambda: store.put("kit-b", "k", [b"x"]),
                 lambda: store.head("kit-b", "k"), lambda: store.read("kit-b", "k"),
                 lambda: store.list("kit-b"), lambda: store.delete("kit-b", "k"),
                 lambda: store.delete_bucket("kit-b"), lambda: store.bucket_config("kit-b", "tags")):
        assert _code(call) == "NoSuchBucket"
    store.create_bucket("kit-b")  # a bucket made again starts empty and unconfigured
    assert list(store.list("kit-b")) == [] and store.versioning("kit-b") is None


def check_put_head_read(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    body = bytes(range(256)) * 40
    info = store.put(bucket, "data/one.bin", [body[:1000], b"", body[1000:]], content_type="application/x-kit",
                     metadata={"owner": "kit"}, tags={"t": "1"}, storage_class="STANDARD_IA")
    assert (info.key, info.size, info.etag) == ("data/one.bin", len(body), hashlib.md5(body).hexdigest())
    assert (info.content_type, info.metadata, info.tags, info.storage_class) == (
        "application/x-kit", {"owner": "kit"}, {"t": "1"}, "STANDARD_IA")
    assert info.version_id is None and not info.delete_marker and not info.encryption
    assert store.head(bucket, "data/one.bin") == info
    assert _read(store, bucket, "data/one.bin") == body
    assert _read(store, bucket, "data/one.bin", 10, 19) == body[10:20]
    assert _read(store, bucket, "data/one.bin", 10) == body[10:]
    assert _read(store, bucket, "data/one.bin", len(body) - 1, len(body) + 100) == body[-1:]
    assert _read(store, bucket, "data/one.bin", len(body) + 5) == b""
    assert store.put(bucket, "given", [b"x"], etag="0123-2").etag == "0123-2"  # a multipart upload's ETag
    empty = store.put(bucket, "empty", [])
    assert (empty.size, empty.etag, empty.content_type) == (0, hashlib.md5(b"").hexdigest(), "binary/octet-stream")
    assert _read(store, bucket, "empty") == b""
    again = store.put(bucket, "data/one.bin", [b"replaced"])
    assert store.head(bucket, "data/one.bin") == again and _read(store, bucket, "data/one.bin") == b"replaced"
    assert store.head(bucket, "data/one.bin").metadata == {}
    assert _code(lambda: store.head(bucket, "absent")) == "NoSuchKey"
    assert _code(lambda: store.read(bucket, "absent")) == "NoSuchKey"
    for bad in ("", "/lead", "a/../b", "a/./b"):
        assert _code(lambda bad=bad: store.put(bucket, bad, [b"x"])) in ("InvalidArgument", "KeyTooLongError")


def check_large_objects_stream(open_store: OpenStore) -> None:
    """A body larger than any one buffer goes in as a stream of chunks and comes back whole and in ranges."""
    store = open_store(None)
    bucket = _bucket(store)
    piece = secrets.token_bytes(1 << 20)
    count = 18  # past the external store's multipart threshold
    info = store.put(bucket, "big", (piece for _ in range(count)))
    digest = hashlib.md5(usedforsecurity=False)
    for _ in range(count):
        digest.update(piece)
    assert (info.size, info.etag) == (count << 20, digest.hexdigest())
    total = hashlib.md5(usedforsecurity=False)
    size = 0
    for chunk in store.read(bucket, "big"):
        total.update(chunk)
        size += len(chunk)
    assert (size, total.hexdigest()) == (info.size, info.etag)
    start = (9 << 20) - 7
    assert _read(store, bucket, "big", start, start + 20) == (piece + piece)[start % (1 << 20):][:21]


def check_keys_that_nest_and_odd_segments(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    keys = ["a", "a/b", "a/", "a//b", "@x", "@@y/z", "a/@data", "a/@meta.json", "a/@versions/v", "é/ü", "A", "a!"]
    for key in keys:
        store.put(bucket, key, [key.encode()])
    listed = [info.key for info in store.list(bucket)]
    assert listed == sorted(keys, key=lambda k: k.encode())
    for key in keys:
        assert _read(store, bucket, key) == key.encode()
        assert store.head(bucket, key).key == key
    store.delete(bucket, "a")
    assert _code(lambda: store.head(bucket, "a")) == "NoSuchKey"
    assert _read(store, bucket, "a/b") == b"a/b"  # "a" went, "a/..." stayed
    assert "a" not in [info.key for info in store.list(bucket)]


def check_list_prefixes(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    keys = ["logs/2024/01.txt", "logs/2024/02.txt", "logs/2025/01.txt", "logs-old/x", "logs/", "log", "other/a"]
    for key in keys:
        store.put(bucket, key, [b"."])

    def listed(prefix: str) -> list[str]:
        return [info.key for info in store.list(bucket, prefix)]
    assert listed("") == sorted(keys, key=lambda k: k.encode())
    assert listed("logs/") == ["logs/", "logs/2024/01.txt", "logs/2024/02.txt", "logs/2025/01.txt"]
    assert listed("logs/2024/0") == ["logs/2024/01.txt", "logs/2024/02.txt"]
    assert listed("logs") == ["logs-old/x", "logs/", "logs/2024/01.txt", "logs/2024/02.txt", "logs/2025/01.txt"]
    assert listed("log") == ["log", "logs-old/x", "logs/", "logs/2024/01.txt", "logs/2024/02.txt",
                             "logs/2025/01.txt"]
    assert listed("nothing/here/") == [] and listed("logs/2026") == []
    assert [e.info.key for e in store.list_versions(bucket, "logs/2024/")] == ["logs/2024/01.txt", "logs/2024/02.txt"]


def check_long_listing(open_store: OpenStore) -> None:
    """A listing longer than any batch a store reads in comes back whole, in order, each object its own."""
    store = open_store(None)
    bucket = _bucket(store)
    keys = [f"part-{n:03d}" for n in range(45)]
    for key in reversed(keys):
        store.put(bucket, key, [key.encode()], metadata={"n": key[-3:]})
    listed = list(store.list(bucket, "part-"))
    assert [i.key for i in listed] == keys
    assert all(i.metadata == {"n": i.key[-3:]} and i.size == len(i.key) for i in listed)


def check_delete(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    store.put(bucket, "gone", [b"x"])
    outcome = store.delete(bucket, "gone")
    assert (outcome.version_id, outcome.delete_marker) == (None, False)
    assert _code(lambda: store.head(bucket, "gone")) == "NoSuchKey"
    assert list(store.list(bucket)) == [] and list(store.list_versions(bucket)) == []
    store.delete(bucket, "never-was")  # S3 answers 204 for a key that is not there
    store.delete_bucket(bucket)  # nothing is left behind of a deleted object


def check_versioning_enabled(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    store.put(bucket, "k", [b"before"])  # written unversioned: the null version
    store.set_bucket_config(bucket, "versioning", "Enabled")
    assert store.versioning(bucket) == "Enabled"
    one = store.put(bucket, "k", [b"one"])
    two = store.put(bucket, "k", [b"two"], tags={"v": "2"})
    assert one.version_id and two.version_id and one.version_id != two.version_id
    assert store.head(bucket, "k") == two and _read(store, bucket, "k") == b"two"
    assert _read(store, bucket, "k", version_id=one.version_id) == b"one"
    assert _read(store, bucket, "k", 1, 2, version_id="null") == b"ef"
    assert store.head(bucket, "k", version_id=one.version_id) == one
    entries = list(store.list_versions(bucket))
    assert [(e.info.version_id, e.is_latest) for e in entries] == [
        (two.version_id, True), (one.version_id, False), (None, False)]
    assert [i.key for i in store.list(bucket)] == ["k"]

    marker = store.delete(bucket, "k")
    assert marker.delete_marker and marker.version_id
    with pytest.raises(S3Error) as caught:
        store.head(bucket, "k")
    assert caught.value.code == "NoSuchKey"
    assert ("x-amz-delete-marker", "true") in caught.value.headers
    assert _code(lambda: store.head(bucket, "k", version_id=marker.version_id)) == "MethodNotAllowed"
    assert list(store.list(bucket)) == []
    entries = list(store.list_versions(bucket))
    assert [(e.info.version_id, e.info.delete_marker, e.is_latest) for e in entries[:2]] == [
        (marker.version_id, True, True), (two.version_id, False, False)]
    assert _code(lambda: store.delete_bucket(bucket)) == "BucketNotEmpty"  # old versions keep it in use

    removed = store.delete(bucket, "k", version_id=marker.version_id)  # undelete
    assert (removed.version_id, removed.delete_marker) == (marker.version_id, True)
    assert store.head(bucket, "k").version_id == two.version_id
    assert [i.key for i in store.list(bucket)] == ["k"]
    store.delete(bucket, "k", version_id=two.version_id)  # the latest version, for good
    assert _read(store, bucket, "k") == b"one"
    assert store.delete(bucket, "k", version_id="f" * 32).version_id == "f" * 32  # not there: 204
    assert _code(lambda: store.head(bucket, "k", version_id="f" * 32)) == "NoSuchVersion"
    assert _code(lambda: store.head(bucket, "k", version_id="not-an-id")) == "InvalidArgument"
    for entry in list(store.list_versions(bucket)):
        store.delete(bucket, entry.info.key, version_id=entry.info.version_id or "null")
    assert list(store.list_versions(bucket)) == []
    store.delete_bucket(bucket)


def check_versioning_suspended(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    store.set_bucket_config(bucket, "versioning", "Enabled")
    kept = store.put(bucket, "k", [b"enabled"]).version_id
    store.set_bucket_config(bucket, "versioning", "Suspended")
    first = store.put(bucket, "k", [b"s1"])
    assert first.version_id == "null"
    store.put(bucket, "k", [b"s2"])
    assert [e.info.version_id for e in store.list_versions(bucket)] == ["null", kept]
    assert _read(store, bucket, "k") == b"s2" and _read(store, bucket, "k", version_id=kept) == b"enabled"
    marker = store.delete(bucket, "k")
    assert (marker.version_id, marker.delete_marker) == ("null", True)
    entries = list(store.list_versions(bucket))
    assert [(e.info.version_id, e.info.delete_marker) for e in entries] == [("null", True), (kept, False)]
    store.put(bucket, "other", [b"o"])
    store.delete(bucket, "other", version_id="null")
    assert _code(lambda: store.head(bucket, "other")) == "NoSuchKey"


def check_tags_storage_class_restore(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    info = store.put(bucket, "k", [b"cold"], metadata={"m": "1"})
    tagged = store.set_tags(bucket, "k", {"a": "b"})
    assert tagged.tags == {"a": "b"} and tagged.etag == info.etag and tagged.metadata == {"m": "1"}
    assert store.head(bucket, "k").tags == {"a": "b"}
    archived = store.set_storage_class(bucket, "k", "GLACIER")
    assert archived.storage_class == "GLACIER" and not archived.readable(0)
    restored = store.set_restored_until(bucket, "k", 2e9)
    assert restored.restored_until == 2e9 and restored.readable(1e9)
    assert store.head(bucket, "k").restored_until == 2e9
    assert store.set_storage_class(bucket, "k", "DEEP_ARCHIVE").restored_until is None  # a new class, a new restore
    assert _read(store, bucket, "k") == b"cold"  # the bytes stay as they are
    assert _code(lambda: store.set_tags(bucket, "absent", {})) == "NoSuchKey"
    store.set_bucket_config(bucket, "versioning", "Enabled")
    old = store.put(bucket, "v", [b"1"]).version_id
    store.put(bucket, "v", [b"2"])
    store.set_tags(bucket, "v", {"old": "yes"}, version_id=old)
    assert store.head(bucket, "v", version_id=old).tags == {"old": "yes"}
    assert store.head(bucket, "v").tags == {}
    store.set_storage_class(bucket, "v", "GLACIER", version_id=old)
    assert store.head(bucket, "v", version_id=old).storage_class == "GLACIER"


def check_bucket_configs(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    assert store.bucket_config(bucket, "cors") is None and store.bucket_encryption(bucket) is None
    rules = [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]
    store.set_bucket_config(bucket, "cors", rules)
    store.set_bucket_config(bucket, "tags", {"team": "kit"})
    assert store.bucket_config(bucket, "cors") == rules and store.bucket_config(bucket, "tags") == {"team": "kit"}
    store.set_bucket_config(bucket, "cors", None)
    assert store.bucket_config(bucket, "cors") is None and store.bucket_config(bucket, "tags") == {"team": "kit"}
    store.set_bucket_encryption(bucket, {"SSEAlgorithm": "AES256"})
    assert store.bucket_encryption(bucket) == {"SSEAlgorithm": "AES256"}
    store.set_bucket_encryption(bucket, None)
    assert store.bucket_encryption(bucket) is None
    store.delete_bucket(bucket)
    store.create_bucket(bucket)
    assert store.bucket_config(bucket, "tags") is None  # configs go with their bucket


def check_encryption_at_rest(open_store: OpenStore) -> None:
    keys = KitKeys()
    store = open_store(keys)
    bucket = _bucket(store)
    body = secrets.token_bytes(3 * CHUNK + 123)  # several sealed chunks and a short last one
    info = store.put(bucket, "sealed", [body[:5000], body[5000:]], encryption=Encryption("aws:kms", "kit-key"))
    assert info.encryption["algorithm"] == "aws:kms" and info.encryption["kms_key_arn"] == "kit-key"
    assert (info.size, info.etag) == (len(body), hashlib.md5(body).hexdigest())  # of the plaintext
    assert store.local_path(bucket, "sealed") is None  # no plain file to hand out
    assert _read(store, bucket, "sealed") == body
    for start, end in ((0, 0), (CHUNK - 2, CHUNK + 2), (2 * CHUNK + 7, None), (len(body) - 1, len(body) + 9)):
        expected = body[start:] if end is None else body[start:end + 1]
        assert _read(store, bucket, "sealed", start, end) == expected, (start, end)
    assert _read(store, bucket, "sealed", len(body) + 3) == b""
    assert store.put(bucket, "sealed-empty", [], encryption=Encryption("AES256")).encryption["algorithm"] == "AES256"
    assert _read(store, bucket, "sealed-empty") == b""
    store.set_bucket_encryption(bucket, {"SSEAlgorithm": "AES256"})
    default = store.put(bucket, "by-default", [b"plain in, sealed at rest"])
    assert default.encryption["algorithm"] == "AES256"
    assert _read(store, bucket, "by-default") == b"plain in, sealed at rest"
    store.set_bucket_config(bucket, "versioning", "Enabled")
    older = store.put(bucket, "by-default", [b"older"]).version_id
    store.put(bucket, "by-default", [b"newer"])
    assert _read(store, bucket, "by-default", version_id=older) == b"older"
    without_keys = open_store(None)  # the same lake, as a tool without the keys opens it
    assert without_keys.head(bucket, "sealed") == info  # its facts need no key
    assert _code(lambda: without_keys.read(bucket, "sealed")) == "InvalidRequest"
    assert _code(lambda: without_keys.put(bucket, "more", [b"x"])) == "InvalidRequest"  # the bucket's default


def check_local_path(open_store: OpenStore) -> None:
    store = open_store(None)
    bucket = _bucket(store)
    store.put(bucket, "k", [b"bytes"])
    path = store.local_path(bucket, "k")
    assert path is None or path.read_bytes() == b"bytes"
    assert store.staging_dir().is_dir()


def check_readers_see_whole_objects(open_store: OpenStore) -> None:
    """While one writer replaces an object again and again, every read is one whole version of it."""
    store = open_store(None)
    bucket = _bucket(store)
    versions = [bytes([n]) * 200_000 for n in range(4)]
    store.put(bucket, "hot", [versions[0]])
    stop = threading.Event()
    failures: list[str] = []

    def write() -> None:
        index = 0
        while not stop.is_set():
            index += 1
            store.put(bucket, "hot", [versions[index % len(versions)]])

    writer = threading.Thread(target=write, name="kit-writer")
    writer.start()
    try:
        for _ in range(40):
            got = _read(store, bucket, "hot")
            if got not in versions:
                failures.append(f"read {len(got)} bytes that are no whole version")
    finally:
        stop.set()
        writer.join(30)
    assert not failures, failures[:3]


CHECKS: tuple[Callable[[OpenStore], None], ...] = (
    check_buckets, check_put_head_read, check_large_objects_stream, check_keys_that_nest_and_odd_segments,
    check_list_prefixes, check_long_listing, check_delete, check_versioning_enabled, check_versioning_suspended,
    check_tags_storage_class_restore, check_bucket_configs, check_encryption_at_rest, check_local_path,
    check_readers_see_whole_objects,
)
