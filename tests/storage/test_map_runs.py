"""Map runs: written with their execution's commit, found by ARN, listed by execution."""

from __future__ import annotations

import pytest
from storage_rows import at, execution

from flowstate.storage import ExecutionDelta, InvalidToken, MapRunRecord, Store

MAP_RUN = "arn:aws:states:us-east-1:123456789012:mapRun:orders/Items:{}"


def run(execution_arn: str, n: int, start: float) -> MapRunRecord:
    return MapRunRecord(execution_arn, MAP_RUN.format(n), at(start))


def start_with_runs(store: Store, name: str, *runs: tuple[int, float]) -> str:
    row = execution(name)
    store.commit(
        [
            ExecutionDelta(
                row.arn,
                row,
                is_new=True,
                map_runs_added=[run(row.arn, n, start) for n, start in runs],
            )
        ]
    )
    return row.arn


def test_a_map_run_is_found_by_its_arn(store: Store) -> None:
    arn = start_with_runs(store, "e1", (1, 5.0))
    assert store.get_map_run(MAP_RUN.format(1)) == run(arn, 1, 5.0)
    assert store.get_map_run(MAP_RUN.format(2)) is None


def test_map_runs_are_listed_newest_first_per_execution(store: Store) -> None:
    arn = start_with_runs(store, "e1", (1, 1.0), (2, 3.0))
    store.commit([ExecutionDelta(arn, map_runs_added=[run(arn, 3, 2.0)])])
    other = start_with_runs(store, "e2", (9, 4.0))
    page = store.list_map_runs(arn)
    assert [r.arn for r in page.items] == [MAP_RUN.format(n) for n in (2, 3, 1)]
    assert page.next_token is None
    assert [r.arn for r in store.list_map_runs(other).items] == [MAP_RUN.format(9)]
    assert store.list_map_runs("arn:aws:states:us-east-1:123456789012:execution:x:y").items == []


def test_map_runs_page_with_tokens_of_their_own_execution(store: Store) -> None:
    arn = start_with_runs(store, "e1", (1, 1.0), (2, 2.0), (3, 3.0))
    other = start_with_runs(store, "e2", (4, 1.0), (5, 2.0))
    first = store.list_map_runs(arn, 2)
    assert [r.arn for r in first.items] == [MAP_RUN.format(3), MAP_RUN.format(2)]
    assert first.next_token is not None
    second = store.list_map_runs(arn, 2, first.next_token)
    assert [r.arn for r in second.items] == [MAP_RUN.format(1)]
    assert second.next_token is None
    with pytest.raises(InvalidToken):
        store.list_map_runs(other, 2, first.next_token)
    with pytest.raises(InvalidToken):
        store.list_map_runs(arn, 2, "garbage")


def test_a_repeated_map_run_row_keeps_the_first(store: Store) -> None:
    arn = start_with_runs(store, "e1", (1, 1.0))
    store.commit([ExecutionDelta(arn, map_runs_added=[run(arn, 1, 9.0)])])
    assert store.get_map_run(MAP_RUN.format(1)) == run(arn, 1, 1.0)
    assert len(store.list_map_runs(arn).items) == 1


def test_a_refused_batch_writes_no_map_run(store: Store) -> None:
    start_with_runs(store, "e1")
    again = execution("e1")
    with pytest.raises(Exception, match="e1"):
        store.commit(
            [ExecutionDelta(again.arn, again, is_new=True, map_runs_added=[run(again.arn, 7, 0.0)])]
        )
    assert store.get_map_run(MAP_RUN.format(7)) is None


def test_a_delta_carries_only_its_own_map_runs() -> None:
    with pytest.raises(ValueError, match="carries map run"):
        ExecutionDelta("arn:one", map_runs_added=[run("arn:other", 1, 0.0)])


def test_retention_deletes_the_map_runs_of_expired_executions(store: Store) -> None:
    old = execution("old", status="SUCCEEDED", stop_at=at(10))
    kept = execution("kept", status="SUCCEEDED", stop_at=at(1000))
    store.commit(
        [
            ExecutionDelta(old.arn, old, is_new=True, map_runs_added=[run(old.arn, 1, 1.0)]),
            ExecutionDelta(kept.arn, kept, is_new=True, map_runs_added=[run(kept.arn, 2, 1.0)]),
        ]
    )
    assert store.expire_executions(at(100)) == 1
    assert store.get_map_run(MAP_RUN.format(1)) is None
    assert store.list_map_runs(old.arn).items == []
    assert store.get_map_run(MAP_RUN.format(2)) == run(kept.arn, 2, 1.0)
