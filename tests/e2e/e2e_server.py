"""A real ``flowstate serve`` process: start it, wait for ``/health``, stop or kill it, read its
log. ``start()`` after ``terminate()`` or ``kill()`` restarts it on the same database and port,
as an operator would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "ACCOUNT",
    "GRACEFUL_EXIT_CODES",
    "REGION",
    "FlowstateServer",
    "Gate",
    "ServerError",
    "Servers",
    "free_port",
]

ACCOUNT = "123456789012"
REGION = "us-east-1"

# Bounds, not expectations: a healthy server answers /health in well under a second and
# drains on SIGTERM in about one; these only keep a hung process from hanging the suite.
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 80

# What a server that drained on SIGTERM exits with.
GRACEFUL_EXIT_CODES = (0,)

# Settings the server would read from the environment (config.py): the tests pass flags only.
_SERVER_ENV = ("AWS_ACCOUNT_ID", "AWS_DEFAULT_REGION", "SFN_MOCK_CONFIG")


class ServerError(AssertionError):
    """The server did not start or stop as it should; the message carries its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flowstate_executable() -> str:
    beside = Path(sys.executable).with_name("flowstate")  # .venv/bin/flowstate
    if beside.exists():
        return str(beside)
    found = shutil.which("flowstate")
    if found is None:
        raise ServerError("no flowstate executable beside the interpreter or on PATH")
    return found


class FlowstateServer:
    """``flowstate serve`` on 127.0.0.1, its database, functions file and log under ``workdir``.

    ``clock`` is ``"virtual"`` or ``"real"``. The log file collects stdout and stderr of every
    start, each preceded by a ``--- start N`` line.
    """

    def __init__(self, workdir: Path, *, functions: Path, clock: str = "virtual") -> None:
        self.workdir = workdir
        self.db = workdir / "flowstate.db"
        self.functions = functions
        self.clock = clock
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [
            _flowstate_executable(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--clock",
            self.clock,
            "--functions",
            str(self.functions),
        ]

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process and return once ``GET /health`` answers 200."""
        if self.is_running:
            raise ServerError("the server is already running")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("FLOWSTATE_") and key not in _SERVER_ENV
        }
        env["PYTHONUNBUFFERED"] = "1"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            # cwd is the work directory so that no flowstate.toml of the checkout is read.
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        delay = 0.02
        last = "no answer yet"
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(
                    f"flowstate serve exited with {code} before /health answered:\n{self.log()}"
                )
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
                    last = f"HTTP {answer.status}"
            except urllib.error.HTTPError as error:  # 503 while starting
                last = f"HTTP {error.code}"
            except OSError as error:  # not listening yet
                last = repr(error)
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"/health did not answer 200 within {START_TIMEOUT_SECONDS} s "
                    f"(last: {last}):\n{self.log()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def terminate(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; its exit code.

        A server that needed SIGKILL raises ``ServerError`` (after it is dead).
        """
        if self.process is None:
            raise ServerError("the server was never started")
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise ServerError(
                f"flowstate serve did not exit within {timeout} s of SIGTERM:\n{self.log()}"
            ) from None

    def kill(self) -> int:
        """SIGKILL: the process gets no chance to flush or close anything."""
        if self.process is None:
            raise ServerError("the server was never started")
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def log(self, tail: int | None = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        if tail is not None and len(lines) > tail:
            lines = [f"... ({len(lines) - tail} earlier lines)", *lines[-tail:]]
        return "\n".join(lines)


class Servers:
    """Starts servers for one test; ``servers(clock="real")`` returns a healthy one."""

    def __init__(self, root: Path, *, functions: Path) -> None:
        self.root = root
        self.functions = functions
        self.started: list[FlowstateServer] = []

    def __call__(self, *, clock: str = "virtual") -> FlowstateServer:
        workdir = self.root / f"server-{len(self.started)}"
        workdir.mkdir()
        server = FlowstateServer(workdir, functions=self.functions, clock=clock)
        self.started.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        """SIGTERM every server still running; a server that needed SIGKILL is an error."""
        errors: list[ServerError] = []
        for server in self.started:
            if server.is_running:
                try:
                    server.terminate()
                except ServerError as error:
                    errors.append(error)
        if errors:
            raise errors[0]


class Gate:
    """A file the gated function (``e2e_functions.gate``) waits for: ``path`` goes in the
    execution's input, ``open()`` lets the function return."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._file = path

    def open(self) -> None:
        self._file.touch()
