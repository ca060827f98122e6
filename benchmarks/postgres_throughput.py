"""Standard executions on PostgreSQL next to SQLite, and what an idle node costs PostgreSQL.

Throughput: each workload starts ``--executions`` executions at once (200 by default) into
one engine, in-process, and waits for all of them; outputs are checked. On PostgreSQL the
engine runs as a cluster node (lease, fenced commits, LISTEN connection), exactly as
``flowstate serve --db postgresql://...`` does. Prints state transitions/s, executions/s and
the database transactions the group commit needed.

Idle cost: one node joins an empty database and does nothing for ``--idle-seconds``; the
statements it sends are counted in the client (every ``execute``/``executemany``) and, as a
cross-check, from ``pg_stat_database.xact_commit`` (all transactions in that database,
this script's own two reads included). Figures only: nothing is asserted.

    .venv/bin/python benchmarks/postgres_throughput.py \\
        [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--executions 200] [--repeat 3]
        [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from flowstate.integrations.functions import FunctionRegistry
from flowstate.runtime.clock import VirtualClock
from flowstate.runtime.cluster import Cluster, DatabaseClock
from flowstate.runtime.engine import Engine, EngineSettings, StartRequest
from flowstate.storage import SQLiteStore, StateMachineRecord, Store
from flowstate.storage.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).parent))
from durable_throughput import flaky, noop, workload

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"

# --- counting the statements this process sends ------------------------------------------

_count = 0
_count_lock = threading.Lock()


def _counting(method: Any) -> Any:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _count
        with _count_lock:
            _count += 1
        return method(self, *args, **kwargs)

    return wrapper


psycopg.Cursor.execute = _counting(psycopg.Cursor.execute)  # type: ignore[method-assign]
psycopg.Cursor.executemany = _counting(psycopg.Cursor.executemany)  # type: ignore[method-assign]


def statements() -> int:
    with _count_lock:
        return _count


# --- databases ---------------------------------------------------------------------------


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


def create_database(admin: str) -> str:
    name = f"flowstate_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return with_database(admin, name)


def drop_database(admin: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def xact_commits(url: str) -> int:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (name,),
        ).fetchone()
    return int(row[0]) if row else 0


# --- throughput --------------------------------------------------------------------------


async def run_once(store: Store, name: str, executions: int) -> tuple[float, float, int]:
    definition, value, expected, transitions = workload(name)
    now = datetime.now(UTC)
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    if store.get_state_machine(arn) is None:
        store.create_state_machine(
            StateMachineRecord(arn, name, "STANDARD", definition, ROLE, "r1", now, now)
        )
    clock = VirtualClock()
    ownership = Cluster(store, lease_seconds=10) if isinstance(store, PostgresStore) else None
    engine = Engine(
        store,
        clock=clock,
        functions=FunctionRegistry({"noop": noop, "flaky": flaky}),
        settings=EngineSettings(),
        ownership=ownership,
    )
    await engine.start()
    stamp = time.time_ns()
    requests = [
        StartRequest(
            definition,
            arn,
            name,
            "r1",
            ROLE,
            "STANDARD",
            f"e{stamp}-{i}",
            f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:e{stamp}-{i}",
            json.dumps(value),
            value,
        )
        for i in range(executions)
    ]
    began = time.perf_counter()
    await asyncio.gather(*(engine.start_execution(r) for r in requests))
    await asyncio.gather(*(engine.wait_stopped(r.arn) for r in requests))
    elapsed = time.perf_counter() - began
    commits = engine.commits
    await engine.stop()
    for r in requests:
        row = store.get_execution(r.arn)
        if row is None or row.status != "SUCCEEDED" or json.loads(row.output or "") != expected:
            raise SystemExit(f"{name}: wrong result for {r.arn}: {row}")
    return executions * transitions / elapsed, executions / elapsed, commits


def throughput(url: str, names: list[str], executions: int, repeat: int) -> None:
    print(f"\n{executions} concurrent Standard executions per run, median of {repeat} runs")
    print(
        f"{'workload':<16} {'store':<11} {'transitions/s':>14} {'executions/s':>13} "
        f"{'commits/run':>12}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for kind in ("sqlite", "postgresql"):
                rates, per_second, commits = [], [], []
                for n in range(repeat):
                    store: Store = (
                        SQLiteStore(Path(tmp) / f"{name}-{n}.db")
                        if kind == "sqlite"
                        else PostgresStore(url)
                    )
                    rate, eps, landed = asyncio.run(run_once(store, name, executions))
                    store.close()
                    rates.append(rate)
                    per_second.append(eps)
                    commits.append(landed)
                print(
                    f"{name:<16} {kind:<11} {statistics.median(rates):>12,.0f}/s "
                    f"{statistics.median(per_second):>11,.0f}/s "
                    f"{statistics.median(commits):>12,.0f}"
                )


# --- idle cost ---------------------------------------------------------------------------


async def idle(url: str, seconds: float) -> None:
    store = PostgresStore(url)
    clock = DatabaseClock()
    ownership = Cluster(store, lease_seconds=10, clock=clock)
    engine = Engine(store, clock=clock, settings=EngineSettings(), ownership=ownership)
    await engine.start()
    await asyncio.sleep(2)  # past start-up (join, first claim round)
    before_statements, before_xacts = statements(), xact_commits(url)
    began = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    sent = statements() - before_statements - 2  # minus the first pg_stat reading's own
    # pg_stat_database is flushed by each backend about once a second when idle, at most
    # every ten: let the last ones arrive before reading it again.
    await asyncio.sleep(11)
    xacts = xact_commits(url) - before_xacts - 1  # minus the first reading's own
    await engine.stop()
    store.close()
    minutes = elapsed / 60
    print(f"\nidle node, lease 10 s (heartbeat every 3.3 s), fallback poll 30 s, {elapsed:.0f} s:")
    print(f"  statements sent by the node: {sent} ({sent / minutes:.1f}/min)")
    print(f"  transactions seen by PostgreSQL in its database: {xacts} (over {elapsed + 11:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dsn",
        default=os.environ.get(
            "FLOWSTATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server and database where this user may create databases",
    )
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", default="task_chain_10,pass_chain_100")
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    url = create_database(args.dsn)
    try:
        # Idle first: nothing left over from the throughput runs in this process or database.
        if args.idle_seconds > 0:
            asyncio.run(idle(url, args.idle_seconds))
        if args.executions > 0:
            throughput(url, args.workloads.split(","), args.executions, args.repeat)
    finally:
        drop_database(args.dsn, url)


if __name__ == "__main__":
    main()
