"""What versioning costs the lake's plain object path: PUT, HEAD and GET on an unversioned bucket vs a versioned one.

Run: .venv/bin/python benchmarks/s3_versioning.py [--objects 300] [--size 4096] [--rounds 5] [--no-fsync]

Both buckets live in one folder store (`LocalBlobStore`, the store the server uses) in this process, side by
side in one run: each round overwrites the same keys in each bucket (so the versioned bucket keeps one more
version per key every round) and reads them back, the order alternating between rounds. The unversioned
bucket takes the code path every bucket took before versioning existed: run this against an older checkout
(PYTHONPATH=<old>/src) with --plain-only to compare that path before and after. Printed last: the median
per-round time ratio versioned/unversioned (the cost of keeping versions) and the unversioned µs per
PUT+HEAD+GET.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from sagelab.lake.blobs import LocalBlobStore


def round_trip(store: LocalBlobStore, bucket: str, objects: int, body: bytes) -> float:
    start = time.perf_counter()
    for n in range(objects):
        key = f"data/part-{n:05d}"
        store.put(bucket, key, [body])
        store.head(bucket, key)
        b"".join(store.read(bucket, key))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--plain-only", action="store_true", help="time only the unversioned bucket")
    parser.add_argument("--no-fsync", action="store_true",
                        help="skip fsync (it dominates and varies with the disk): time the code path alone")
    args = parser.parse_args()
    if args.no_fsync:
        os.fsync = lambda fd: None
    body = os.urandom(args.size)
    with tempfile.TemporaryDirectory() as root:
        store = LocalBlobStore(Path(root))
        store.create_bucket("plain")
        if not args.plain_only:
            store.create_bucket("versioned")
            store.set_bucket_config("versioned", "versioning", "Enabled")
        plain, versioned = [], []
        for index in range(args.rounds):
            order = ["plain", "versioned"] if index % 2 == 0 else ["versioned", "plain"]
            for bucket in order:
                if bucket == "versioned" and args.plain_only:
                    continue
                took = round_trip(store, bucket, args.objects, body)
                (plain if bucket == "plain" else versioned).append(took)
            print(f"round {index + 1}: unversioned {plain[-1]:.3f}s"
                  + ("" if args.plain_only else f", versioned {versioned[-1]:.3f}s"))
        per_op = statistics.median(plain) / args.objects * 1e6
        if not args.plain_only:
            ratio = statistics.median(v / p for v, p in zip(versioned, plain, strict=True))
            print(f"versioned/unversioned time ratio: {ratio:.2f}")
        print(f"unversioned PUT+HEAD+GET: {per_op:.0f} µs")


if __name__ == "__main__":
    main()
