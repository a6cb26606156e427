"""Conformance kit for the metadata store: every database URL sagelab accepts must pass each check in `CHECKS`.

A check takes a database URL whose schema is fresh (see `fresh_store`) and drives `ResourceStore` the way the
services do. The concurrent checks run their writers in separate OS processes, each with its own `Database`,
as job processes and several servers on one database do. They are forked (cheap), after the check has closed
its own connections so no child shares a socket with it.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable

import pytest

from sagelab.storage.db import Database
from sagelab.storage.resources import AlreadyExists, LeaseLost, NotFound, Resource, ResourceStore

#: Writer processes per concurrent check, and what each of them writes.
WRITERS = 4
INCREMENTS = 25


def fresh_store(url: str) -> ResourceStore:
    db = Database(url)
    db.upgrade()
    return ResourceStore(db)


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:000000000000:{kind}/{name}"


def _run_writers(store: ResourceStore, target: Callable[..., None], *args: object,
                 count: int = WRITERS) -> list[str]:
    """Run `target(start, index, queue, *args)` in `count` processes at once; what they put on the queue."""
    store.db.close()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start = ctx.Event()
    procs = [ctx.Process(target=target, args=(start, index, results, *args)) for index in range(count)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0, f"writer process exited with {proc.exitcode}"
    return [results.get(timeout=5) for _ in range(count)]


# --- writer processes ----------------------------------------------------------------------------------
def _increment_writer(start, index: int, results, url: str, kind: str, name: str) -> None:
    store = ResourceStore(Database(url))
    start.wait(60)

    def bump(res: Resource) -> None:
        res.doc["Count"] = res.doc.get("Count", 0) + 1
        res.doc.setdefault("Writers", []).append(index)

    for _ in range(INCREMENTS):
        store.update(kind, name, bump)
    store.db.close()
    results.put("done")


def _insert_writer(start, index: int, results, url: str, kind: str, name: str) -> None:
    store = ResourceStore(Database(url))
    start.wait(60)
    try:
        store.insert(kind, name, _arn(kind, name), "InProgress", {"Writer": index})
        results.put(f"won:{index}")
    except AlreadyExists:
        results.put("lost")
    store.db.close()


def _claim_writer(start, index: int, results, url: str, kind: str, name: str, old_lease: str) -> None:
    """Take the lease over from `old_lease` (as a recovering server does) and then write under it."""
    store = ResourceStore(Database(url))
    mine = f"lease-{index}"
    start.wait(60)

    def claim(res: Resource) -> None:
        res.lease = mine

    try:
        store.update(kind, name, claim, lease=old_lease)
    except LeaseLost:
        results.put("fenced")
        store.db.close()
        return

    def work(res: Resource) -> None:
        res.doc.setdefault("RunBy", []).append(index)

    store.update(kind, name, work, lease=mine)
    store.db.close()
    results.put(f"claimed:{index}")


def _tag_writer(start, index: int, results, url: str, arn: str) -> None:
    store = ResourceStore(Database(url))
    start.wait(60)
    for round_ in range(10):
        store.put_tags(arn, {"shared": f"{index}-{round_}", f"own-{index}": str(round_)})
    store.db.close()
    results.put("done")


def _value_writer(start, index: int, results, url: str, key: str) -> None:
    store = ResourceStore(Database(url))
    start.wait(60)
    results.put(store.get_or_create_value(key, lambda: f"made-by-{index}"))
    store.db.close()


# --- checks ------------------------------------------------------------------------------------------
def check_insert_and_get(url: str) -> None:
    store = fresh_store(url)
    kind, name = "TrainingJob", f"job-{uuid.uuid4().hex[:8]}"
    doc = {"TrainingJobName": name, "Nested": {"List": [1, 2.5, "x"], "Flag": True, "None": None},
           "_Private": "kept"}
    store.insert(kind, name, _arn(kind, name), "InProgress", doc, created_at=1700000000.125, lease="l1")
    got = store.get(kind, name)
    assert got is not None
    assert (got.kind, got.name, got.arn, got.status, got.lease) == (kind, name, _arn(kind, name), "InProgress", "l1")
    assert got.doc == doc
    assert got.created_at == 1700000000.125  # a float column keeps sub-second times exactly
    assert store.get_by_arn(_arn(kind, name)).name == name
    assert store.get(kind, "absent") is None
    assert store.get("Model", name) is None  # the same name under another kind is another resource
    with pytest.raises(AlreadyExists):
        store.insert(kind, name, _arn(kind, name + "-2"), "InProgress", {})


def check_update_and_delete(url: str) -> None:
    store = fresh_store(url)
    kind, name = "Endpoint", f"ep-{uuid.uuid4().hex[:8]}"
    created = store.insert(kind, name, _arn(kind, name), "Creating", {"A": 1})

    def finish(res: Resource) -> None:
        res.status = "InService"
        res.doc["A"] = 2

    updated = store.update(kind, name, finish)
    assert updated.status == "InService" and updated.modified_at >= created.modified_at
    again = store.get(kind, name)
    assert again.status == "InService" and again.doc == {"A": 2} and again.created_at == created.created_at
    with pytest.raises(NotFound):
        store.update(kind, "absent", finish)
    store.put_tags(again.arn, {"k": "v"})
    assert store.delete(kind, name) is True
    assert store.get(kind, name) is None and store.get_tags(again.arn) == {}
    assert store.delete(kind, name) is False


def check_list_filters_and_order(url: str) -> None:
    store = fresh_store(url)
    kind = f"Kind{uuid.uuid4().hex[:6]}"
    for i, (name, status) in enumerate([("alpha-One", "Completed"), ("beta-two", "Failed"), ("ALPHA-three", "Completed"),
                                        ("gamma_4", "InProgress"), ("gamma%5", "InProgress")]):
        store.insert(kind, name, _arn(kind, name), status, {"i": i}, created_at=1000.0 + i)
    names = lambda rows: [r.name for r in rows]  # noqa: E731
    assert names(store.list(kind)) == ["gamma%5", "gamma_4", "ALPHA-three", "beta-two", "alpha-One"]
    assert names(store.list(kind, descending=False))[0] == "alpha-One"
    # NameContains is case-insensitive on every backend, and LIKE's wildcards in it are literal.
    assert names(store.list(kind, name_contains="alpha", descending=False)) == ["alpha-One", "ALPHA-three"]
    assert names(store.list(kind, name_contains="Alpha-T")) == ["ALPHA-three"]
    assert names(store.list(kind, name_contains="a_")) == ["gamma_4"]
    assert names(store.list(kind, name_contains="%")) == ["gamma%5"]
    assert names(store.list(kind, status="Completed", descending=False)) == ["alpha-One", "ALPHA-three"]
    assert names(store.list(kind, created_after=1001.0, created_before=1004.0, descending=False)) == [
        "ALPHA-three", "gamma_4"]
    assert names(store.list(kind, sort_by="Name", descending=False)) == sorted(
        ["alpha-One", "beta-two", "ALPHA-three", "gamma_4", "gamma%5"])
    assert sorted(names(store.in_status(kind, ["InProgress", "Failed"]))) == ["beta-two", "gamma%5", "gamma_4"]
    request = {"NameContains": "GAMMA", "SortBy": "CreationTime", "SortOrder": "Ascending"}
    assert names(store.list_for_request(kind, request)) == ["gamma_4", "gamma%5"]


def check_ties_sort_by_name(url: str) -> None:
    """Rows with equal sort keys come in name order, so a paginated List* never repeats or skips one."""
    store = fresh_store(url)
    kind = f"Kind{uuid.uuid4().hex[:6]}"
    for name in ["c", "a", "b", "e", "d"]:
        store.insert(kind, name, _arn(kind, name), "Completed", {}, created_at=5.0)
    assert [r.name for r in store.list(kind)] == ["a", "b", "c", "d", "e"]
    assert [r.name for r in store.list(kind, sort_by="Status", descending=False)] == ["a", "b", "c", "d", "e"]


def check_lease_fencing(url: str) -> None:
    store = fresh_store(url)
    kind, name = "TrainingJob", f"job-{uuid.uuid4().hex[:8]}"
    store.insert(kind, name, _arn(kind, name), "InProgress", {}, lease="first")

    def take_over(res: Resource) -> None:
        res.lease = "second"

    store.update(kind, name, take_over)
    with pytest.raises(LeaseLost):
        store.update(kind, name, lambda r: setattr(r, "status", "Completed"), lease="first")
    assert store.get(kind, name).status == "InProgress"
    store.update(kind, name, lambda r: setattr(r, "status", "Completed"), lease="second")
    assert store.get(kind, name).status == "Completed"


def check_tags(url: str) -> None:
    store = fresh_store(url)
    arn = _arn("Model", uuid.uuid4().hex[:8])
    store.put_tags(arn, {"b": "2", "a": "1"})
    store.put_tags(arn, {"a": "one", "c": ""})
    assert store.get_tags(arn) == {"a": "one", "b": "2", "c": ""}
    assert list(store.get_tags(arn)) == ["a", "b", "c"]
    store.delete_tags(arn, ["b", "absent"])
    assert store.get_tags(arn) == {"a": "one", "c": ""}


def check_concurrent_updates_lose_nothing(url: str) -> None:
    """Read-modify-writes from several processes on one resource: every one of them lands."""
    store = fresh_store(url)
    kind, name = "Counter", f"c-{uuid.uuid4().hex[:8]}"
    store.insert(kind, name, _arn(kind, name), "", {"Count": 0})
    _run_writers(store, _increment_writer, url, kind, name)
    doc = store.get(kind, name).doc
    assert doc["Count"] == WRITERS * INCREMENTS
    assert sorted(doc["Writers"]) == sorted(i for i in range(WRITERS) for _ in range(INCREMENTS))


def check_concurrent_inserts_one_wins(url: str) -> None:
    store = fresh_store(url)
    kind, name = "TrainingJob", f"job-{uuid.uuid4().hex[:8]}"
    outcomes = _run_writers(store, _insert_writer, url, kind, name)
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1 and outcomes.count("lost") == WRITERS - 1, outcomes
    assert store.get(kind, name).doc == {"Writer": int(winners[0].split(":")[1])}


def check_concurrent_take_over_one_wins(url: str) -> None:
    """Several processes take one lease over at once: exactly one gets it, and only it writes afterwards."""
    store = fresh_store(url)
    kind, name = "TuningJob", f"tj-{uuid.uuid4().hex[:8]}"
    store.insert(kind, name, _arn(kind, name), "InProgress", {}, lease="dead-server")
    outcomes = _run_writers(store, _claim_writer, url, kind, name, "dead-server")
    claimed = [o for o in outcomes if o.startswith("claimed:")]
    assert len(claimed) == 1 and outcomes.count("fenced") == WRITERS - 1, outcomes
    winner = int(claimed[0].split(":")[1])
    res = store.get(kind, name)
    assert res.lease == f"lease-{winner}" and res.doc["RunBy"] == [winner]


def check_concurrent_tags(url: str) -> None:
    store = fresh_store(url)
    arn = _arn("Model", uuid.uuid4().hex[:8])
    _run_writers(store, _tag_writer, url, arn)
    tags = store.get_tags(arn)
    assert {k: v for k, v in tags.items() if k != "shared"} == {f"own-{i}": "9" for i in range(WRITERS)}
    assert tags["shared"].endswith("-9")


def check_concurrent_get_or_create(url: str) -> None:
    store = fresh_store(url)
    key = f"fact-{uuid.uuid4().hex[:8]}"
    values = _run_writers(store, _value_writer, url, key)
    assert len(set(values)) == 1 and values[0].startswith("made-by-")
    assert store.get_or_create_value(key, lambda: "late") == values[0]


def check_upgrade_is_idempotent(url: str) -> None:
    db = Database(url)
    first = db.upgrade()
    assert db.upgrade() == first
    db.close()


def check_modified_time_moves(url: str) -> None:
    store = fresh_store(url)
    kind, name = "Model", f"m-{uuid.uuid4().hex[:8]}"
    store.insert(kind, name, _arn(kind, name), "", {}, created_at=time.time() - 10)
    res = store.update(kind, name, lambda r: None)
    assert store.get(kind, name).modified_at == res.modified_at > res.created_at


CHECKS: tuple[Callable[[str], None], ...] = (
    check_upgrade_is_idempotent, check_insert_and_get, check_update_and_delete, check_list_filters_and_order,
    check_ties_sort_by_name, check_modified_time_moves, check_lease_fencing, check_tags,
    check_concurrent_updates_lose_nothing, check_concurrent_inserts_one_wins, check_concurrent_take_over_one_wins,
    check_concurrent_tags, check_concurrent_get_or_create,
)
