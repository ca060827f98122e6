"""``flowstate serve``: the Step Functions HTTP API over the durable engine."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click

from flowstate.config import ConfigError, Settings, load_settings

__all__ = ["serve"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: 8083].")
@click.option(
    "--db",
    default=None,
    help="PATH.db | sqlite:///PATH[?synchronous=FULL] | memory: | postgresql://... "
    "(several nodes may share one PostgreSQL) [default: ./.flowstate/flowstate.db].",
)
@click.option(
    "--functions",
    multiple=True,
    help="Python file or dotted module whose functions serve Lambda tasks (repeatable).",
)
@click.option(
    "--deploy",
    multiple=True,
    help="Definition file or directory to create/update at start; name from the file name.",
)
@click.option("--clock", type=click.Choice(["real", "virtual"]), default=None)
@click.option("--account-id", default=None)
@click.option("--region", default=None)
@click.option("--retention-days", type=int, default=None)
@click.option("--max-payload-bytes", type=int, default=None)
@click.option("--max-history-events", type=int, default=None)
@click.option("--express-timeout-seconds", type=int, default=None)
@click.option("--redrive-window-days", type=int, default=None)
@click.option("--group-commit-max", type=int, default=None)
@click.option("--sqlite-synchronous", default=None, help="NORMAL (default) or FULL.")
@click.option("--task-threads", type=int, default=None)
@click.option(
    "--lease-seconds",
    type=int,
    default=None,
    help="PostgreSQL: a node silent this long loses its executions to the others [default: 10].",
)
@click.option(
    "--mock-config",
    default=None,
    help="Step Functions Local mock configuration (also SFN_MOCK_CONFIG): start an "
    "execution of <stateMachineArn>#<TestCase> to run that test case.",
)
@click.option("--config", "config_path", default=None, help="A flowstate.toml to read.")
@click.option("--log-level", default=None)
def serve(config_path: str | None, **flags: Any) -> None:
    """Serve the Step Functions API (boto3, the AWS CLI and SDKs work unchanged)."""
    try:
        settings = load_settings(flags, config_path=config_path)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    run_server(settings)


def load_mock_config(path: str | None) -> Any:
    """``--mock-config FILE``: the parsed configuration, or a usage error saying what is wrong."""
    from flowstate.integrations.mocks import MockConfig, MockConfigError

    if not path:
        return None
    try:
        return MockConfig.load(path)
    except OSError as exc:
        raise click.UsageError(f"cannot read --mock-config {path!r}: {exc.strerror}") from None
    except MockConfigError as exc:
        raise click.UsageError(f"--mock-config: {exc}") from None


def build_service(settings: Settings) -> Any:
    from flowstate.cli.functions import load_functions
    from flowstate.integrations.connections import ConnectionRegistry
    from flowstate.integrations.functions import FunctionRegistry
    from flowstate.runtime.clock import make_clock
    from flowstate.runtime.cluster import DatabaseClock, ownership_for
    from flowstate.service.facade import Service, ServiceSettings
    from flowstate.storage import StorageError, parse_db

    try:
        location = parse_db(settings.db)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if location.kind == "sqlite" and "synchronous=" not in (settings.db or ""):
        location = dataclasses.replace(location, synchronous=settings.sqlite_synchronous)
    try:
        functions = FunctionRegistry(load_functions(settings.functions))
    except (ImportError, OSError, SyntaxError) as exc:
        raise click.UsageError(f"cannot load --functions: {exc}") from None
    mocks = load_mock_config(settings.mock_config)
    try:
        store = location.open()
    except StorageError as error:
        raise click.ClickException(str(error)) from None
    # Several nodes may share PostgreSQL: deadlines and leases then follow the database's clock.
    shared = location.kind == "postgresql"
    clock = DatabaseClock() if shared and settings.clock == "real" else make_clock(settings.clock)
    ownership = ownership_for(
        store,
        lease_seconds=settings.lease_seconds,
        endpoint=f"http://{settings.host}:{settings.port}",
        clock=clock if isinstance(clock, DatabaseClock) else None,
    )
    return Service(
        store,
        clock=clock,
        ownership=ownership,
        functions=functions,
        settings=ServiceSettings(
            account_id=settings.account_id,
            region=settings.region,
            retention_days=settings.retention_days,
            max_history_events=settings.max_history_events,
            express_timeout_seconds=settings.express_timeout_seconds,
            redrive_window_days=settings.redrive_window_days,
            group_commit_max=settings.group_commit_max,
            task_threads=settings.task_threads,
        ),
        deploy=[Path(p) for p in settings.deploy],
        connections=ConnectionRegistry.from_config(settings.connections),
        mocks=mocks,
    )


# The cyclic collector's thresholds once the server runs. CPython's default examines the
# youngest generation after 700 new container objects; the engine makes several per event
# (events, their details, frames' documents), so under load that is a collection every few
# executions, each walking the executions in flight. At 50,000 a young-generation pass comes
# ~70 times less often and examines what is still alive by then (most of the engine's
# short-lived objects are freed by reference counting first): measured +15-35% transitions/s
# on the benchmark workloads, for at most ~50,000 unreachable cycles waiting a little longer.
COLLECTOR_THRESHOLDS = (50_000, 20, 10)


def tune_collector() -> None:
    """Tune the cyclic collector for a long-running engine process.

    What the process made while starting (modules, botocore's service model, the deployed
    definitions: ~100,000 objects that live as long as the process) is taken out of the
    collector's sight (``gc.freeze``); otherwise every full collection walks them again: about
    20 ms each, several times a second under load (a quarter of the CPU time of a busy Task
    workload, measured). They are still freed by reference counting; only a reference cycle
    among them, if one ever became garbage, would stay. Then the collector runs less often
    (``COLLECTOR_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def run_server(settings: Settings) -> None:
    import uvicorn

    from flowstate.api import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.host not in _LOOPBACK:
        click.echo(
            f"warning: binding to {settings.host}: the API is unauthenticated — anyone who can "
            "reach this port can create and run state machines",
            err=True,
        )
    service = build_service(settings)
    app = create_app(service, max_payload_bytes=settings.max_payload_bytes)
    tune_collector()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        access_log=False,
    )
    server = _Server(config, on_exit=service.drain)
    server.run()
    if not server.started:
        sys.exit(1)


class _Server:
    """uvicorn's server, except that a SIGTERM/SIGINT that drained cleanly exits 0: uvicorn
    re-raises the caught signal after shutdown, which process managers report as a crash."""

    def __new__(cls, config: Any, on_exit: Callable[[], None] | None = None) -> Any:
        import asyncio

        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                super().handle_exit(sig, frame)
                if on_exit is not None:
                    # uvicorn waits for open requests before the app's shutdown: end the
                    # long polls (GetActivityTask) now, from the loop, not the signal handler.
                    with contextlib.suppress(RuntimeError):
                        asyncio.get_running_loop().call_soon_threadsafe(on_exit)

            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                with super().capture_signals():
                    yield
                    self._captured_signals.clear()  # drained: do not re-raise

        return Server(config)
