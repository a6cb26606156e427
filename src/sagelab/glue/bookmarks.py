"""Job bookmarks for Python shell scripts: process only the objects that arrived since the last run.

In a job script:

    from sagelab.glue.bookmarks import new_objects

    for uri in new_objects("s3://bucket/incoming/"):
        ...  # process s3://bucket/incoming/<key>

With `--job-bookmark-option job-bookmark-enable`, `new_objects` lists the objects under the prefix that
no earlier successful run has been handed, and the run's progress is saved when it SUCCEEDS (a failed
run hands the same objects to the next run). With `job-bookmark-disable` (the default) it returns every
object; with `job-bookmark-pause` it returns the new ones without saving progress. An object counts as
seen by its key and LastModified time, so an object rewritten later is new again.
The state is the job's bookmark: GetJobBookmark shows it and ResetJobBookmark clears it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _load(variable: str) -> dict[str, Any]:
    path = os.environ.get(variable)
    if not path or not Path(path).exists():
        return {}
    return json.loads(Path(path).read_text())


def new_objects(s3_uri: str, *, client: Any = None) -> list[str]:
    """s3:// URIs of the objects under `s3_uri` not yet processed by a successful run, oldest first."""
    if not s3_uri.startswith("s3://"):
        raise ValueError(f"new_objects needs an s3://bucket/prefix URI, got {s3_uri!r}.")
    bucket, _, prefix = s3_uri[5:].partition("/")
    if client is None:
        import boto3

        client = boto3.client("s3")
    objects = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            objects.append((item["LastModified"].timestamp(), item["Key"]))
    objects.sort()
    option = os.environ.get("SAGELAB_JOB_BOOKMARK_OPTION", "job-bookmark-disable")
    if option == "job-bookmark-disable":
        return [f"s3://{bucket}/{key}" for _, key in objects]
    seen = saved_state().get(s3_uri, {})
    if option == "job-bookmark-enable" and objects:
        save_progress({s3_uri: advanced(objects, seen)})
    return [f"s3://{bucket}/{key}" for _, key in unseen(objects, seen)]


def saved_state() -> dict[str, Any]:
    """The job's bookmark as the last successful run left it: {what was read: its entry}."""
    return _load("SAGELAB_JOB_BOOKMARK_STATE")


def save_progress(progress: dict[str, Any]) -> None:
    """Record entries to merge into the job's bookmark when this run SUCCEEDS."""
    out = os.environ.get("SAGELAB_JOB_BOOKMARK_OUT")
    if out:
        Path(out).write_text(json.dumps({**_load("SAGELAB_JOB_BOOKMARK_OUT"), **progress}))


def unseen(objects: list[tuple[float, str]], seen: dict[str, Any]) -> list[tuple[float, str]]:
    """The (LastModified, key) pairs that the bookmark entry `seen` has not covered."""
    mark = float(seen.get("mark", float("-inf")))
    at_mark = set(seen.get("keys_at_mark", []))
    return [(t, k) for t, k in objects if t > mark or (t == mark and k not in at_mark)]


def advanced(objects: list[tuple[float, str]], seen: dict[str, Any]) -> dict[str, Any]:
    """The bookmark entry once `objects` (not empty) are processed: the latest time and the keys at it."""
    mark = float(seen.get("mark", float("-inf")))
    at_mark = set(seen.get("keys_at_mark", []))
    latest = max(t for t, _ in objects)
    if latest < mark:
        return dict(seen)
    keys_at_latest = sorted({k for t, k in objects if t == latest} | (at_mark if latest == mark else set()))
    return {"mark": latest, "keys_at_mark": keys_at_latest}
