"""CheckpointConfig: a job's checkpoint folder kept in step with its S3 prefix.

Before the script starts, every object under the prefix is copied into the folder (a restarted spot job
finds the checkpoints its last attempt saved). While it runs, a watcher thread polls the folder and uploads
each file that is new or changed since its last upload (by size and modification time); a final sync runs
when training ends or the job is interrupted. A file deleted locally stays in S3: sagelab only adds and
replaces checkpoint objects, never deletes them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TextIO

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import S3Uri

#: Seconds between two looks at the checkpoint folder.
POLL_SECONDS = 0.5


class CheckpointSync:
    def __init__(self, blobs: BlobStore, uri: S3Uri, folder: Path, log: TextIO):
        self.blobs = blobs
        self.uri = uri
        self.folder = folder
        self.log = log
        #: Relative path -> (size, mtime_ns) of what was last uploaded or restored.
        self._synced: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _prefix(self) -> str:
        key = self.uri.key
        return key if not key or key.endswith("/") else key + "/"

    def restore(self) -> int:
        """Copy every checkpoint under the prefix into the folder; returns how many there were."""
        self.folder.mkdir(parents=True, exist_ok=True)
        restored = 0
        for info in list(self.blobs.list(self.uri.bucket, self._prefix)):
            relative = info.key[len(self._prefix):]
            target = (self.folder / relative).resolve()
            if not relative or info.key.endswith("/") or not target.is_relative_to(self.folder.resolve()):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as f:
                for chunk in self.blobs.read(self.uri.bucket, info.key):
                    f.write(chunk)
            stat = target.stat()
            self._synced[relative] = (stat.st_size, stat.st_mtime_ns)
            restored += 1
        return restored

    def sync(self) -> int:
        """Upload what changed since the last sync; returns how many files were uploaded."""
        with self._lock:
            uploaded = 0
            for path in sorted(self.folder.rglob("*")):
                if not path.is_file():
                    continue
                relative = str(path.relative_to(self.folder))
                try:
                    stat = path.stat()
                    seen = (stat.st_size, stat.st_mtime_ns)
                    if self._synced.get(relative) == seen:
                        continue
                    data = path.read_bytes()
                except FileNotFoundError:  # the script replaced it meanwhile: the next look uploads it
                    continue
                try:
                    self.blobs.put(self.uri.bucket, self._prefix + relative, [data])
                except S3Error as exc:
                    self.log.write(f"sagelab: cannot upload checkpoint {relative} to {self.uri}: {exc.message}\n")
                    continue
                self._synced[relative] = seen
                uploaded += 1
            return uploaded

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="checkpoint-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and upload what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sync()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.sync()
