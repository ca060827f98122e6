"""The Store contract, run on every backend (see conftest.BACKENDS)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from storage_rows import MACHINE_ARN, at, chunk, events, execution, machine, start, task, timer

from flowstate.storage import (
    ExecutionAlreadyExists,
    ExecutionDelta,
    ExecutionRecord,
    HistoryConflict,
    InvalidToken,
    LeaseLost,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
    Store,
    TaskRecord,
    TimerRecord,
)

# --- state machines ------------------------------------------------------------------------


def test_state_machine_round_trip(store: Store) -> None:
    record = replace(machine(), attributes='{"description":"orders"}')
    store.create_state_machine(record)
    assert store.get_state_machine(record.arn) == record
    assert store.get_state_machine(record.arn + "-other") is None


def test_create_state_machine_twice_is_refused(store: Store) -> None:
    store.create_state_machine(machine())
    with pytest.raises(StateMachineAlreadyExists, match="orders"):
        store.create_state_machine(machine(definition='{"changed":1}'))
    assert store.get_state_machine(machine().arn) == machine()


def test_update_keeps_the_revisions_running_executions_use(store: Store) -> None:
    first = machine(revision="r1", definition='{"v":1}')
    store.create_state_machine(first)
    second = replace(first, definition='{"v":2}', revision_id="r2", updated_at=at(60))
    store.update_state_machine(second)

    assert store.get_state_machine(first.arn) == second
    old = store.get_revision(first.arn, "r1")
    new = store.get_revision(first.arn, "r2")
    assert old is not None and old.definition == '{"v":1}' and old.created_at == at(0)
    assert new is not None and new.definition == '{"v":2}' and new.created_at == at(60)
    assert store.get_revision(first.arn, "r3") is None


def test_update_or_delete_of_a_missing_state_machine(store: Store) -> None:
    with pytest.raises(StateMachineDoesNotExist, match="stateMachine:orders"):
        store.update_state_machine(machine())
    assert store.delete_state_machine(machine().arn) is False


def test_delete_state_machine_keeps_its_revisions(store: Store) -> None:
    store.create_state_machine(machine())
    assert store.delete_state_machine(machine().arn) is True
    assert store.get_state_machine(machine().arn) is None
    assert store.get_revision(machine().arn, "r1") is not None


def test_list_state_machines_pages_by_arn(store: Store) -> None:
    for name in ["c", "a", "e", "b", "d"]:
        store.create_state_machine(machine(name))
    first = store.list_state_machines(max_results=2)
    assert [m.name for m in first.items] == ["a", "b"]
    assert first.next_token is not None
    second = store.list_state_machines(max_results=2, next_token=first.next_token)
    assert [m.name for m in second.items] == ["c", "d"]
    third = store.list_state_machines(max_results=2, next_token=second.next_token)
    assert [m.name for m in third.items] == ["e"]
    assert third.next_token is None


# --- commit: round trips -------------------------------------------------------------------


def test_execution_round_trip_keeps_every_field(store: Store) -> None:
    record = execution(
        "a",
        seed=(1 << 64) - 1,  # unsigned 64-bit seeds survive signed SQL integers
        snapshot=bytes(range(256)),
        input='{"ü":"ß"}',
    )
    store.commit([start(record)])
    assert store.get_execution(record.arn) == record
    assert store.get_execution(record.arn + "x") is None


def test_update_overwrites_mutable_columns_only(store: Store) -> None:
    record = execution("a")
    store.commit([start(record)])
    done = replace(
        record,
        status="SUCCEEDED",
        output='{"ok":true}',
        stop_at=at(5),
        snapshot=None,
        input="changed input is ignored",
        lease_owner="ignored: leases are not written by commit",
    )
    store.commit([ExecutionDelta(record.arn, done, events=events(2, 3))])

    stored = store.get_execution(record.arn)
    assert stored == replace(
        record, status="SUCCEEDED", output='{"ok":true}', stop_at=at(5), snapshot=None
    )


def test_failed_execution_keeps_error_and_cause(store: Store) -> None:
    record = execution("a")
    store.commit([start(record)])
    failed = replace(
        record, status="FAILED", error="States.TaskFailed", cause="boom", stop_at=at(9)
    )
    store.commit([ExecutionDelta(record.arn, failed)])
    stored = store.get_execution(record.arn)
    assert stored is not None
    assert (stored.status, stored.error, stored.cause, stored.output) == (
        "FAILED",
        "States.TaskFailed",
        "boom",
        None,
    )


def test_one_batch_writes_many_executions(store: Store) -> None:
    records = [execution(f"e{i}", start=i) for i in range(50)]
    store.commit(
        [
            start(r, events=events(1, 3), timers_added=[timer(r, "wait", 100 + i)])
            for i, r in enumerate(records)
        ]
    )
    for r in records:
        assert store.get_execution(r.arn) == r
        assert [e.id for e in store.get_history(r.arn).items] == [1, 2, 3]
    assert len(store.due_timers(at(1_000))) == 50


def test_empty_batch_is_a_no_op(store: Store) -> None:
    store.commit([])
    assert store.running_executions() == []


def test_two_deltas_for_one_execution_are_refused(store: Store) -> None:
    record = execution("a")
    with pytest.raises(ValueError, match="one delta per execution"):
        store.commit([start(record), ExecutionDelta(record.arn, events=events(2, 2))])
    assert store.get_execution(record.arn) is None


def test_delta_must_carry_its_own_row() -> None:
    with pytest.raises(ValueError, match="carries the row of"):
        ExecutionDelta("arn:other", execution("a"))
    with pytest.raises(ValueError, match="is_new needs"):
        ExecutionDelta("arn:x", is_new=True)


# --- commit: atomicity ---------------------------------------------------------------------


def _nothing_from(store: Store, *names: str) -> None:
    for name in names:
        arn = execution(name).arn
        assert store.get_execution(arn) is None
        assert store.get_history(arn).items == []
        assert store.pending_tasks(arn) == []
    assert store.due_timers(at(10**6)) == []


def test_a_history_conflict_mid_batch_leaves_nothing(store: Store) -> None:
    existing = execution("old")
    store.commit([start(existing, events=events(1, 2))])
    a, b = execution("a"), execution("b")
    moved = replace(existing, status="SUCCEEDED", stop_at=at(3))
    batch = [
        start(a, timers_added=[timer(a, "t", 5)], tasks_added=[task(a, "t1", "tok-a")]),
        # Event 2 is already stored: a runtime stepping from a stale frame.
        ExecutionDelta(existing.arn, moved, events=events(2, 3)),
        start(b, timers_added=[timer(b, "t", 6)]),
    ]
    with pytest.raises(HistoryConflict, match="orders:old"):
        store.commit(batch)

    _nothing_from(store, "a", "b")
    assert store.get_execution(existing.arn) == existing
    assert [e.id for e in store.get_history(existing.arn).items] == [1, 2]
    assert store.task_by_token("tok-a") is None


def test_starting_an_existing_execution_leaves_nothing(store: Store) -> None:
    existing = execution("old")
    store.commit([start(existing)])
    a = execution("a")
    again = replace(existing, input='{"other":1}')
    with pytest.raises(ExecutionAlreadyExists) as caught:
        store.commit([start(a, timers_added=[timer(a, "t", 1)]), start(again, events=[])])
    assert caught.value.arns == [existing.arn]
    _nothing_from(store, "a")
    assert store.get_execution(existing.arn) == existing


def test_a_stale_generation_is_fenced_off(store: Store) -> None:
    a, b = execution("a"), execution("b")
    store.commit([start(a), start(b)])
    stale = replace(a, status="SUCCEEDED", generation=a.generation + 1)
    fresh = replace(b, status="SUCCEEDED")
    with pytest.raises(LeaseLost) as caught:
        store.commit(
            [
                ExecutionDelta(b.arn, fresh, events=events(2, 2)),
                ExecutionDelta(a.arn, stale, events=events(2, 2), timers_added=[timer(a, "t", 1)]),
            ]
        )
    assert caught.value.arns == [a.arn]
    assert store.get_execution(a.arn) == a
    assert store.get_execution(b.arn) == b
    assert [e.id for e in store.get_history(b.arn).items] == [1]
    assert store.due_timers(at(10)) == []


def test_updating_an_expired_execution_is_refused(store: Store) -> None:
    ghost = execution("ghost")
    with pytest.raises(LeaseLost, match="orders:ghost"):
        store.commit([ExecutionDelta(ghost.arn, ghost)])


# --- history -------------------------------------------------------------------------------


@pytest.fixture
def long_history(store: Store) -> str:
    record = execution("h")
    store.commit([start(record, events=events(1, 25))])
    return record.arn


def _all_pages(store: Store, arn: str, size: int, reverse: bool = False) -> list[list[int]]:
    pages = []
    token = None
    while True:
        page = store.get_history(arn, max_results=size, next_token=token, reverse_order=reverse)
        pages.append([e.id for e in page.items])
        token = page.next_token
        if token is None:
            return pages


def test_history_round_trip(store: Store, long_history: str) -> None:
    event = store.get_history(long_history, max_results=1).items[0]
    assert (event.id, event.previous_event_id, event.type, event.timestamp, event.details) == (
        1,
        0,
        "PassStateEntered",
        at(1),
        '{"n":1}',
    )


def test_history_pages_forward(store: Store, long_history: str) -> None:
    assert _all_pages(store, long_history, 10) == [
        list(range(1, 11)),
        list(range(11, 21)),
        list(range(21, 26)),
    ]


def test_history_pages_in_reverse(store: Store, long_history: str) -> None:
    assert _all_pages(store, long_history, 10, reverse=True) == [
        list(range(25, 15, -1)),
        list(range(15, 5, -1)),
        list(range(5, 0, -1)),
    ]


def test_an_exact_last_page_has_no_token(store: Store, long_history: str) -> None:
    assert _all_pages(store, long_history, 25) == [list(range(1, 26))]


def test_max_results_zero_means_the_default(store: Store, long_history: str) -> None:
    page = store.get_history(long_history, max_results=0)
    assert len(page.items) == 25 and page.next_token is None


def test_history_appended_later_continues_the_pages(store: Store, long_history: str) -> None:
    page = store.get_history(long_history, max_results=20)
    store.commit([ExecutionDelta(long_history, events=events(26, 30))])
    rest = store.get_history(long_history, max_results=20, next_token=page.next_token)
    assert [e.id for e in rest.items] == list(range(21, 31))


@pytest.fixture
def chunked_history(store: Store) -> str:
    """Events 1-5 one row each (as flowstate 0.1.0 wrote them), then chunks of 7, 1 and 17."""
    record = execution("c")
    store.commit([start(record, events=events(1, 5))])
    for first, last in ((6, 12), (13, 13), (14, 30)):
        store.commit([ExecutionDelta(record.arn, history=chunk(first, last))])
    return record.arn


@pytest.mark.parametrize("size", [1, 3, 7, 29, 30, 100])
@pytest.mark.parametrize("reverse", [False, True])
def test_chunked_history_pages_like_rows(
    store: Store, chunked_history: str, size: int, reverse: bool
) -> None:
    pages = _all_pages(store, chunked_history, size, reverse=reverse)
    ids = [i for page in pages for i in page]
    assert ids == (list(range(30, 0, -1)) if reverse else list(range(1, 31)))
    assert all(len(page) == size for page in pages[:-1]) and 0 < len(pages[-1]) <= size
    every = store.get_history(chunked_history, max_results=100).items
    assert [e.details for e in every] == [f'{{"n":{i}}}' for i in range(1, 31)]
    assert [(e.previous_event_id, e.type, e.timestamp) for e in every] == [
        (i - 1, "PassStateEntered", at(i)) for i in range(1, 31)
    ]


def test_chunked_events_are_read_by_id(store: Store, chunked_history: str) -> None:
    found = store.get_events(chunked_history, [30, 2, 13, 12, 99, 6, 13])
    assert [e.id for e in found] == [2, 6, 12, 13, 30]
    assert found[2].details == '{"n":12}'


def test_a_chunk_over_stored_ids_is_a_history_conflict(store: Store, chunked_history: str) -> None:
    with pytest.raises(HistoryConflict):
        store.commit([ExecutionDelta(chunked_history, history=chunk(13, 15))])
    assert len(store.get_history(chunked_history, max_results=100).items) == 30


def test_expiry_removes_chunked_history(store: Store) -> None:
    record = execution("gone", status="SUCCEEDED", stop_at=at(1))
    store.commit([start(record, events=(), history=chunk(1, 3))])
    assert store.expire_executions(older_than=at(500)) == 1
    assert store.get_history(record.arn).items == []
    assert store.get_events(record.arn, [1, 2, 3]) == []


def test_a_delta_carries_events_or_a_chunk_not_both() -> None:
    with pytest.raises(ValueError):
        ExecutionDelta("arn", events=events(1, 1), history=chunk(2, 2))


@pytest.mark.parametrize(
    "token",
    ["garbage", "", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "eyJhIjoxfQ"],
)
def test_garbage_tokens_are_invalid(store: Store, long_history: str, token: str) -> None:
    if token == "":
        # An empty token is "no token", as AWS treats an absent nextToken.
        assert len(store.get_history(long_history, next_token=token).items) == 25
        return
    with pytest.raises(InvalidToken, match="Invalid pagination token"):
        store.get_history(long_history, next_token=token)


def test_a_tampered_token_is_invalid(store: Store, long_history: str) -> None:
    token = store.get_history(long_history, max_results=5).next_token
    assert token is not None
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(InvalidToken, match="not issued by flowstate"):
        store.get_history(long_history, next_token=flipped)


def test_a_token_for_another_query_is_invalid(store: Store, long_history: str) -> None:
    other = execution("other")
    store.commit([start(other, events=events(1, 5))])
    forward = store.get_history(long_history, max_results=5).next_token
    with pytest.raises(InvalidToken, match="different request"):
        store.get_history(long_history, next_token=forward, reverse_order=True)
    with pytest.raises(InvalidToken, match="different request"):
        store.get_history(other.arn, next_token=forward)
    with pytest.raises(InvalidToken, match="different request"):
        store.list_executions(MACHINE_ARN, next_token=forward)


# --- executions: listing and recovery --------------------------------------------------------


def test_list_executions_newest_first_with_status_filter_and_pages(store: Store) -> None:
    done = {2, 5, 7}
    records = [
        execution(f"e{i}", start=i, status="SUCCEEDED" if i in done else "RUNNING")
        for i in range(10)
    ]
    tie = execution("e9b", start=9)  # same start time: ties ordered by ARN, newest first
    store.commit([start(r) for r in [*records, tie]])

    names: list[str] = []
    token = None
    while True:
        page = store.list_executions(MACHINE_ARN, max_results=4, next_token=token)
        assert len(page.items) <= 4
        names += [s.name for s in page.items]
        token = page.next_token
        if token is None:
            break
    assert names == ["e9b", "e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"]

    succeeded = store.list_executions(MACHINE_ARN, status="SUCCEEDED", max_results=2)
    assert [s.name for s in succeeded.items] == ["e7", "e5"]
    rest = store.list_executions(
        MACHINE_ARN, status="SUCCEEDED", max_results=2, next_token=succeeded.next_token
    )
    assert [s.name for s in rest.items] == ["e2"] and rest.next_token is None
    with pytest.raises(InvalidToken):
        store.list_executions(MACHINE_ARN, status="RUNNING", next_token=succeeded.next_token)

    summary = succeeded.items[0]
    assert (summary.arn, summary.state_machine_arn, summary.start_at) == (
        records[7].arn,
        MACHINE_ARN,
        at(7),
    )
    assert store.list_executions(MACHINE_ARN + "-other").items == []


def test_running_executions_walk_in_arn_pages(store: Store) -> None:
    records = [execution(f"r{i:02}", status="RUNNING") for i in range(7)]
    stopped = execution("stopped", status="SUCCEEDED", stop_at=at(3))
    store.commit([start(r) for r in [*records, stopped]])

    first = store.running_executions(limit=5)
    assert first == records[:5]
    assert store.running_executions(after_arn=first[-1].arn, limit=5) == records[5:]


# --- timers --------------------------------------------------------------------------------


def test_due_timers_earliest_first(store: Store) -> None:
    a, b = execution("a"), execution("b")
    store.commit(
        [
            start(a, timers_added=[timer(a, "late", 30), timer(a, "tie", 10)]),
            start(b, timers_added=[timer(b, "tie", 10), timer(b, "early", 5), timer(b, "x", 99)]),
        ]
    )
    assert store.due_timers(at(4)) == []
    assert store.due_timers(at(30)) == [
        TimerRecord(b.arn, "early", at(5)),
        TimerRecord(a.arn, "tie", at(10)),
        TimerRecord(b.arn, "tie", at(10)),
        TimerRecord(a.arn, "late", at(30)),
    ]
    assert store.due_timers(at(30), limit=2) == store.due_timers(at(30))[:2]
    assert store.next_timer_at() == at(5)


def test_timers_stay_until_removed_and_can_be_rearmed(store: Store) -> None:
    a = execution("a")
    store.commit([start(a, timers_added=[timer(a, "wait", 10), timer(a, "retry", 20)])])
    assert len(store.due_timers(at(10))) == 1
    assert len(store.due_timers(at(10))) == 1  # reading does not consume

    # The retry fires; its next attempt is armed under the same id with a later deadline.
    store.commit(
        [
            ExecutionDelta(
                a.arn, timers_removed=["wait", "retry"], timers_added=[timer(a, "retry", 40)]
            )
        ]
    )
    assert store.due_timers(at(39)) == []
    assert store.due_timers(at(40)) == [TimerRecord(a.arn, "retry", at(40))]
    assert store.next_timer_at() == at(40)

    store.commit([ExecutionDelta(a.arn, timers_removed=["retry", "never-armed"])])
    assert store.due_timers(at(10**6)) == []
    assert store.next_timer_at() is None


# --- tasks ---------------------------------------------------------------------------------


def test_pending_tasks_and_tokens(store: Store) -> None:
    a = execution("a")
    t1, t2 = task(a, "t1"), task(a, "t2", token="tok-2")
    store.commit([start(a, tasks_added=[t2, t1])])
    assert store.pending_tasks(a.arn) == [t1, t2]
    assert store.task_by_token("tok-2") == t2

    started = replace(t1, state="STARTED")
    store.commit([ExecutionDelta(a.arn, tasks_added=[started], tasks_removed=["t2"])])
    assert store.pending_tasks(a.arn) == [started]
    assert store.task_by_token("tok-2") is None
    assert store.pending_tasks(execution("b").arn) == []


def test_all_tasks_pages_through_every_execution_in_key_order(store: Store) -> None:
    a, b = execution("a"), execution("b")
    store.commit(
        [
            start(a, tasks_added=[task(a, "t2"), task(a, "t1")]),
            start(b, tasks_added=[task(b, "t0")]),
        ]
    )
    first = store.all_tasks(limit=2)
    assert [(t.execution_arn, t.task_id) for t in first] == [(a.arn, "t1"), (a.arn, "t2")]
    rest = store.all_tasks(after=(first[-1].execution_arn, first[-1].task_id), limit=2)
    assert [(t.execution_arn, t.task_id) for t in rest] == [(b.arn, "t0")]
    assert store.all_tasks(after=(b.arn, "t0")) == []


def test_list_executions_by_version_alias_and_redrive(store: Store) -> None:
    v = replace(execution("v"), version_arn=MACHINE_ARN + ":1")
    al = replace(execution("al", start=5), alias_arn=MACHINE_ARN + ":prod", redrive_count=1)
    plain = execution("plain", start=9)
    store.commit([start(v), start(al), start(plain)])

    def names(**kw: object) -> list[str]:
        return [e.name for e in store.list_executions(MACHINE_ARN, **kw).items]  # type: ignore[arg-type]

    assert names(version_arn=MACHINE_ARN + ":1") == ["v"]
    assert names(alias_arn=MACHINE_ARN + ":prod") == ["al"]
    assert names(redriven=True) == ["al"]
    assert names(redriven=False) == ["plain", "v"]
    got = store.get_execution(v.arn)
    assert got is not None and got.version_arn == MACHINE_ARN + ":1" and got.alias_arn is None
    summary = store.list_executions(MACHINE_ARN, alias_arn=MACHINE_ARN + ":prod").items[0]
    assert summary.alias_arn == MACHINE_ARN + ":prod" and summary.redrive_count == 1


# --- retention -----------------------------------------------------------------------------


def test_expire_executions_removes_old_stopped_ones_with_their_rows(store: Store) -> None:
    old = [execution(f"old{i}", status="SUCCEEDED", stop_at=at(i)) for i in range(3)]
    recent = execution("recent", status="FAILED", stop_at=at(1_000))
    running = execution("running", start=-(10**6))
    store.commit(
        [
            start(
                r,
                events=events(1, 4),
                timers_added=[timer(r, "t", 5)],
                tasks_added=[task(r, "t", token=f"tok-{r.name}")],
            )
            for r in [*old, recent, running]
        ]
    )

    assert store.expire_executions(older_than=at(500), limit=2) == 2
    assert store.expire_executions(older_than=at(500), limit=2) == 1
    assert store.expire_executions(older_than=at(500)) == 0

    for r in old:
        assert store.get_execution(r.arn) is None
        assert store.get_history(r.arn).items == []
        assert store.pending_tasks(r.arn) == []
        assert store.task_by_token(f"tok-{r.name}") is None
    assert {t.execution_arn for t in store.due_timers(at(10))} == {recent.arn, running.arn}
    for r in [recent, running]:
        assert store.get_execution(r.arn) == r
        assert len(store.get_history(r.arn).items) == 4


def test_activity_tasks_are_claimed_once_oldest_first(store: Store) -> None:
    activity = "arn:aws:states:us-east-1:123456789012:activity:review"
    a, b = execution("a"), execution("b")

    def waiting(record: ExecutionRecord, task_id: str, seconds: float) -> TaskRecord:
        return replace(
            task(record, task_id, f"tok-{record.name}-{task_id}"),
            resource=activity,
            state="SCHEDULED",
            created_at=at(seconds),
        )

    other = replace(task(a, "lambda", "tok-l"), state="SCHEDULED")  # not this activity
    store.commit([start(a, tasks_added=[waiting(a, "t1", 5), other])])
    store.commit([start(b, tasks_added=[waiting(b, "t1", 2), waiting(b, "t2", 9)])])
    # By key: only while still waiting.
    claimed = store.claim_activity_task(activity, (a.arn, "t1"))
    assert claimed is not None and (claimed.execution_arn, claimed.state) == (a.arn, "STARTED")
    assert store.claim_activity_task(activity, (a.arn, "t1")) is None
    assert store.claim_activity_task(activity, (a.arn, "lambda")) is None
    # Oldest first, each once, then none.
    order = [store.claim_activity_task(activity) for _ in range(3)]
    assert [(t.execution_arn, t.task_id) if t else None for t in order] == [
        (b.arn, "t1"),
        (b.arn, "t2"),
        None,
    ]
    states = {t.task_id: t.state for t in store.pending_tasks(b.arn)}
    assert states == {"t1": "STARTED", "t2": "STARTED"}
    assert {t.task_id: t.state for t in store.pending_tasks(a.arn)}["lambda"] == "SCHEDULED"


def test_a_released_activity_task_waits_for_a_worker_again(store: Store) -> None:
    activity = "arn:aws:states:us-east-1:123456789012:activity:review"
    a = execution("a")
    waiting = replace(task(a, "t1", "tok"), resource=activity, state="SCHEDULED")
    store.commit([start(a, tasks_added=[waiting])])
    assert store.claim_activity_task(activity) is not None
    assert store.claim_activity_task(activity) is None
    store.release_activity_task(a.arn, "t1")
    again = store.claim_activity_task(activity)
    assert again is not None and again.task_id == "t1"
