"""Several real ``flowstate serve`` processes on one PostgreSQL database (markers slow,
postgres): nodes are killed with SIGKILL and frozen with SIGSTOP while they run executions
mixing Pass chains, Waits and retried Tasks; every execution finishes exactly once, with its
output and a gap-free history, and the frozen node's stale writes are refused.

Task-token callbacks (``.waitForTaskToken``) are answered with SendTaskSuccess through a node
that mostly does not own the execution (forwarded through the inbox), as StopExecution is.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from cluster_nodes import (
    CALLBACK_MACHINE_ARN,
    MACHINE_ARN,
    Node,
    check_histories,
    client,
    execution_arn,
    execution_input,
    expected_output,
    journal,
    outputs,
    statuses,
    stuck_report,
    tokens,
    wait_seconds,
    wait_until_none_running,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def db() -> Iterator[str]:
    import pgdb

    url = pgdb.create_database("flowstate_cluster")
    yield url
    pgdb.drop_database(url)


def _node_id(db: str, node: Node) -> str:
    with psycopg.connect(db) as connection:
        row = connection.execute(
            "SELECT node_id FROM nodes WHERE endpoint = %s AND expires_at > 0 "
            "ORDER BY started_at DESC LIMIT 1",
            (f"http://127.0.0.1:{node.port}",),
        ).fetchone()
    assert row is not None, f"{node.name} has not joined"
    return str(row[0])


def _running_owned_by(db: str, node_id: str) -> int:
    with psycopg.connect(db) as connection:
        row = connection.execute(
            "SELECT COUNT(*) FROM executions WHERE status = 'RUNNING' AND lease_owner = %s",
            (node_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def _check_side_effects(workdir: Path, names: dict[str, int], slack: int) -> None:
    """Each Task attempt's key was called; a key called twice is a re-run of the same attempt
    after its node died (at-least-once), never a new attempt."""
    calls = journal(workdir)
    keys: dict[int, set[str]] = defaultdict(set)
    for entry in calls:
        keys[entry["i"]].add(entry["key"])
    for i in names.values():
        attempts = 2 if execution_input(i, 0)["fail_first"] else 1
        suffixes = sorted(key.rsplit("/", 1)[1] for key in keys[i])
        assert suffixes == [str(n) for n in range(attempts)], (i, keys[i])
    reruns = sum(n - 1 for n in Counter(e["key"] for e in calls).values())
    assert reruns <= slack, reruns


def test_the_survivor_finishes_what_a_killed_node_started(tmp_path: Path, db: str) -> None:
    a = Node(tmp_path, "a", db, lease_seconds=2)
    b = Node(tmp_path, "b", db, lease_seconds=2)
    a.start()
    b.start()
    try:
        sfn = client(a.endpoint)
        waits = {f"x{i}": 1 + i % 3 for i in range(150)}
        for name, wait in waits.items():
            i = int(name[1:])
            sfn.start_execution(
                stateMachineArn=MACHINE_ARN, name=name, input=json.dumps(execution_input(i, wait))
            )
        a_id = _node_id(db, a)
        assert _running_owned_by(db, a_id) > 0
        killed = time.monotonic()
        a.kill()
        while _running_owned_by(db, a_id) and time.monotonic() - killed < 30:
            time.sleep(0.05)
        takeover = time.monotonic() - killed
        assert _running_owned_by(db, a_id) == 0, b.tail()
        found = wait_until_none_running(db, 60)
        done = time.monotonic() - killed
        print(f"\ntakeover after SIGKILL: {takeover:.2f}s (lease 2s); all done {done:.2f}s")
        assert found == {"SUCCEEDED": len(waits)}, (found, b.tail())
        described = client(b.endpoint).describe_execution(executionArn=execution_arn("x7"))
        assert described["status"] == "SUCCEEDED"
        assert b.stop() == 0, b.tail()
    finally:
        a.kill() if a.proc and a.proc.poll() is None else None
        b.stop()
    rows = outputs(db)
    for name, wait in waits.items():
        status, output = rows[name]
        assert status == "SUCCEEDED" and json.loads(output or "") == expected_output(
            int(name[1:]), wait
        )
    check_histories(db)
    for name in list(waits)[:30]:
        assert wait_seconds(db, execution_arn(name)) >= waits[name] - 0.001
    _check_side_effects(tmp_path, {n: int(n[1:]) for n in waits}, slack=150)


REGULAR = 2400
LONG = 60  # wait an hour, stopped through another node (the inbox)
CALLBACKS = 100  # wait for a token, answered through n3 (the inbox when n3 does not own them)


def test_three_nodes_survive_sigkill_and_a_frozen_node(tmp_path: Path, db: str) -> None:
    rng = random.Random(20260307)
    lease = 3
    nodes = [Node(tmp_path, f"n{k}", db, lease_seconds=lease) for k in (1, 2, 3)]
    n1, n2, n3 = nodes
    for node in nodes:
        node.start()
    waits = {f"x{i}": rng.randint(3, 8) for i in range(REGULAR)}
    longs = {f"long{i}": 3600 for i in range(LONG)}
    asks = {f"cb{i}": 0 for i in range(CALLBACKS)}
    everything = {**waits, **longs, **asks}
    index = {
        name: (int(name[1:]) if name.startswith("x") else 10_000 + k)
        for k, name in enumerate(everything)
    }
    alive = [n1, n2, n3]
    lock = threading.Lock()
    issued = 0
    killed_n1 = threading.Event()

    def start(name: str) -> None:
        nonlocal issued
        i = index[name]
        machine = CALLBACK_MACHINE_ARN if name in asks else MACHINE_ARN
        body = json.dumps({"i": i} if name in asks else execution_input(i, everything[name]))
        for attempt in range(8):
            with lock:
                issued += 1
                if issued == len(everything) // 2 and not killed_n1.is_set():
                    killed_n1.set()
                    n1.kill()  # mid-way through the starts
                    alive.remove(n1)
                node = alive[(i + attempt) % len(alive)]
            try:
                client(node.endpoint).start_execution(
                    stateMachineArn=machine, name=name, input=body
                )
                return
            except Exception:  # the node died under us: the same start elsewhere (idempotent)
                time.sleep(0.1)
        raise AssertionError(f"could not start {name}")

    names = list(everything)
    rng.shuffle(names)
    answering = threading.Event()

    def answer() -> None:
        """SendTaskSuccess for every token the ``ask`` function wrote, through n3 (which owns
        few of them: the others are forwarded to their owner), until told to stop."""
        sfn = client(n3.endpoint, read_timeout=60)
        answered: set[str] = set()
        while not answering.is_set():
            for entry in tokens(tmp_path):
                if entry["token"] in answered:
                    continue
                try:
                    sfn.send_task_success(
                        taskToken=entry["token"], output=json.dumps({"ok": entry["i"]})
                    )
                except sfn.exceptions.TaskTimedOut:
                    pass  # answered already (a call re-run after a takeover wrote it twice)
                except Exception:  # a node busy taking over: try again on the next round
                    continue
                answered.add(entry["token"])
            time.sleep(0.2)

    answerer = threading.Thread(target=answer, daemon=True)
    answerer.start()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(start, names))
        print(f"\n{len(names)} starts in {time.monotonic() - started:.1f}s")
        assert killed_n1.is_set()

        # Stop the hour-long ones through n3: the owner (n2, n3, or n1's successor) applies it.
        sfn3 = client(n3.endpoint, read_timeout=30)
        for name in longs:
            sfn3.stop_execution(executionArn=execution_arn(name), error="Halt", cause="test")

        # Freeze n2 for three leases, then let it go on as if nothing happened.
        n2_id = _node_id(db, n2)
        n2.signal(signal.SIGSTOP)
        time.sleep(3 * lease)
        taken = _running_owned_by(db, n2_id)
        n2.signal(signal.SIGCONT)
        found = wait_until_none_running(db, 120)
        answering.set()
        print(f"statuses {found}; n2 still owned {taken} running after the freeze")
        assert found == {"SUCCEEDED": REGULAR + CALLBACKS, "ABORTED": LONG}, "\n".join(
            [str(found), stuck_report(db), *(n.tail() for n in (n2, n3))]
        )
        time.sleep(1)
        n2_log = n2.log.read_text()
        assert f"the lease of {n2_id} expired" in n2_log, n2.tail(80)
        for node in (n2, n3):
            assert node.stop() == 0, node.tail()
    finally:
        answering.set()
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.signal(signal.SIGCONT)
                node.kill()

    rows = outputs(db)
    for name, wait in waits.items():
        status, output = rows[name]
        assert status == "SUCCEEDED", (name, status)
        assert json.loads(output or "") == expected_output(index[name], wait), name
    for name in longs:
        assert rows[name][0] == "ABORTED"
    for name in asks:
        status, output = rows[name]
        assert status == "SUCCEEDED", (name, status)
        assert json.loads(output or "") == {"i": index[name], "answer": {"ok": index[name]}}
    types = check_histories(db)
    assert len(types) == len(everything)
    for name in list(waits)[:50]:
        assert wait_seconds(db, execution_arn(name)) >= waits[name] - 0.001
    _check_side_effects(tmp_path, {n: index[n] for n in waits}, slack=REGULAR)
    assert statuses(db) == {"SUCCEEDED": REGULAR + CALLBACKS, "ABORTED": LONG}
