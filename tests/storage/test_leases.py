"""Node leases, takeover, owner-scoped timers and the inbox, on both SQL backends
(``leases.SQLLeases``); what needs concurrent connections runs on PostgreSQL only."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from storage_rows import at, events, execution, start, timer

from flowstate.storage import ExecutionDelta, LeaseLost, Store


def _owned(name: str, owner: str | None, generation: int = 1, **changes: object) -> object:
    return execution(name, lease_owner=owner, generation=generation, **changes)


def test_a_lease_is_taken_renewed_and_once_expired_never_renewed(sql_store: Store) -> None:
    store = sql_store
    lease = store.join("a", 60, "http://127.0.0.1:8083")
    assert lease.expires_at - lease.now == timedelta(seconds=60)
    assert abs(store.db_now() - lease.now) < timedelta(seconds=5)
    renewed = store.renew("a", 60)
    assert renewed is not None and renewed.expires_at >= lease.expires_at
    assert renewed.dead_nodes == 0
    store.leave("a")
    assert store.renew("a", 60) is None


def test_orphans_of_expired_nodes_are_claimed_with_a_new_generation(sql_store: Store) -> None:
    store = sql_store
    store.join("dead", 60)
    store.join("alive", 60)
    store.join("me", 60)
    dead = [_owned(f"d{i}", "dead") for i in range(3)]
    kept = _owned("k", "alive")
    stopped = _owned("s", "dead", status="SUCCEEDED")
    store.commit([start(r) for r in [*dead, kept, stopped]])
    assert store.claim_orphans("me") == []

    store.leave("dead")
    assert store.renew("me", 60).dead_nodes == 1
    first = store.claim_orphans("me", limit=2)
    second = store.claim_orphans("me", limit=2)
    claimed = first + second
    assert len(first) == 2 and len(second) == 1
    assert sorted(r.arn for r in claimed) == sorted(r.arn for r in dead)
    assert {(r.lease_owner, r.generation) for r in claimed} == {("me", 2)}
    assert store.get_execution(kept.arn).lease_owner == "alive"

    # The dead node wakes up and writes from what it had: fenced off.
    stale = dead[0]
    with pytest.raises(LeaseLost):
        store.commit(
            [ExecutionDelta(stale.arn, replace(stale, status="FAILED"), events=events(2, 2))]
        )
    assert store.get_execution(stale.arn).status == "RUNNING"
    # The dead node is forgotten once it owns nothing running.
    assert store.forget_dead_nodes() == 1


def test_claiming_one_execution(sql_store: Store) -> None:
    store = sql_store
    store.join("a", 60)
    running = _owned("r", "a")
    stopped = _owned("s", "a", status="FAILED")
    store.commit([start(running), start(stopped)])
    # A live owner's running execution is not claimable; a stopped one is (redrive).
    assert store.claim_execution("b", running.arn, stopped=False) is None
    assert store.claim_execution("b", running.arn, stopped=True) is None
    taken = store.claim_execution("b", stopped.arn, stopped=True)
    assert (taken.lease_owner, taken.generation) == ("b", 2)
    store.leave("a")
    taken = store.claim_execution("b", running.arn, stopped=False)
    assert (taken.lease_owner, taken.generation) == ("b", 2)


def test_timers_are_read_per_owner(sql_store: Store) -> None:
    store = sql_store
    a, b = _owned("a", "n1"), _owned("b", "n2")
    store.commit(
        [
            start(a, timers_added=[timer(a, "t1", 5), timer(a, "t2", 50)]),
            start(b, timers_added=[timer(b, "t1", 1)]),
        ]
    )
    assert [(t.execution_arn, t.timer_id) for t in store.owned_due_timers("n1", at(10))] == [
        (a.arn, "t1")
    ]
    assert store.owned_next_timer_at("n1") == at(5)
    assert store.owned_next_timer_at("n2") == at(1)
    assert store.owned_next_timer_at("n3") is None


def test_the_inbox_carries_events_to_the_owner(sql_store: Store) -> None:
    store = sql_store
    a = _owned("a", "n1")
    done = _owned("done", "n1", status="SUCCEEDED")
    store.commit([start(a), start(done)])
    assert store.send(a.arn, "m1", '{"stop":1}') == "n1"
    assert store.send(a.arn, "m2", '{"stop":2}') == "n1"
    assert store.send(done.arn, "m3", "{}") is None
    assert store.owned_inbox("n2") == []
    messages = store.owned_inbox("n1")
    assert [m.message_id for m in messages] == ["m1", "m2"]
    assert store.in_inbox(a.arn, "m1")
    store.delete_inbox([(a.arn, "m1")])
    assert not store.in_inbox(a.arn, "m1")
    assert [m.body for m in store.owned_inbox("n1")] == ['{"stop":2}']


# --- PostgreSQL only: the commit fence and concurrent claimers -----------------------------


@pytest.fixture
def pg_store(pg_url: str) -> object:
    import pgdb
    from flowstate.storage.postgres import PostgresStore

    pgdb.empty(pg_url)
    store = PostgresStore(pg_url)
    yield store
    store.close()


@pytest.mark.postgres
def test_a_node_whose_lease_expired_cannot_commit(pg_store: object) -> None:
    store = pg_store
    store.join("n1", 60)
    store.fence_node = "n1"
    a = _owned("a", "n1")
    store.commit([start(a)])
    store.leave("n1")
    with pytest.raises(LeaseLost) as caught:
        store.commit([ExecutionDelta(a.arn, replace(a, status="SUCCEEDED"), events=events(2, 2))])
    assert caught.value.arns == [a.arn]
    assert store.get_execution(a.arn).status == "RUNNING"


@pytest.mark.postgres
def test_concurrent_claimers_split_the_orphans(pg_url: str, pg_store: object) -> None:
    from flowstate.storage.postgres import PostgresStore

    store = pg_store
    store.join("dead", 60)
    store.commit([start(_owned(f"e{i:03}", "dead")) for i in range(200)])
    store.leave("dead")
    others = [PostgresStore(pg_url) for _ in range(3)]
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(3)

    def claim(node: str, s: PostgresStore) -> None:
        barrier.wait()
        mine = claimed.setdefault(node, [])
        while batch := s.claim_orphans(node, limit=10):
            mine.extend(r.arn for r in batch)

    threads = [threading.Thread(target=claim, args=(f"n{i}", s)) for i, s in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in others:
        s.close()
    every = [arn for arns in claimed.values() for arn in arns]
    assert len(every) == len(set(every)) == 200  # each exactly once
    rows = [store.get_execution(arn) for arn in every]
    assert {r.generation for r in rows} == {2}
