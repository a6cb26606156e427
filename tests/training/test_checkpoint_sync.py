"""CheckpointSync on a real lake folder: restore, upload what changed, leave the rest."""

from __future__ import annotations

import io
import os

from sagelab.lake.blobs import LocalBlobStore
from sagelab.lake.uris import S3Uri
from sagelab.training.checkpoints import CheckpointSync


def _objects(blobs: LocalBlobStore, prefix: str) -> dict[str, bytes]:
    return {info.key: b"".join(blobs.read("ckpt", info.key)) for info in blobs.list("ckpt", prefix)}


def test_restore_then_upload_only_new_or_changed_files(tmp_path):
    blobs = LocalBlobStore(tmp_path / "lake")
    blobs.create_bucket("ckpt")
    blobs.put("ckpt", "runs/a/epoch-1.pt", [b"one"])
    blobs.put("ckpt", "runs/a/sub/meta.json", [b"{}"])
    blobs.put("ckpt", "runs/ab/other.pt", [b"not this prefix"])
    folder = tmp_path / "checkpoints"
    sync = CheckpointSync(blobs, S3Uri("ckpt", "runs/a"), folder, io.StringIO())

    assert sync.restore() == 2
    assert (folder / "epoch-1.pt").read_bytes() == b"one" and (folder / "sub" / "meta.json").read_bytes() == b"{}"
    assert not (folder / "other.pt").exists()
    assert sync.sync() == 0  # what was restored is already there

    (folder / "epoch-2.pt").write_bytes(b"two")
    (folder / "sub" / "meta.json").write_bytes(b'{"epoch": 2}')
    os.utime(folder / "sub" / "meta.json", ns=(1, 1))  # a change the size alone would not show
    assert sync.sync() == 2
    assert sync.sync() == 0
    (folder / "epoch-1.pt").unlink()  # a local delete is not mirrored
    sync.stop()
    assert _objects(blobs, "runs/a/") == {"runs/a/epoch-1.pt": b"one", "runs/a/epoch-2.pt": b"two",
                                          "runs/a/sub/meta.json": b'{"epoch": 2}'}
