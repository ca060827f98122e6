"""A real HTTP server on 127.0.0.1 (stdlib ``http.server`` in a thread) for HTTP Task tests.

Paths: ``/echo`` answers the request it got as JSON; ``/status/<code>`` answers that status
with a JSON body; ``/text`` plain text; ``/image`` a PNG; ``/slow`` answers only when the test
ends; ``/token`` an OAuth client-credentials token endpoint.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Server:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    tokens_issued: int = 0

    def last(self, path: str) -> Recorded:
        return [r for r in self.requests if r.path == path][-1]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("X-Test", "one")
            self.send_header("X-Test", "two")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _any(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(
                self.command,
                split.path,
                parse_qsl(split.query, keep_blank_values=True),
                list(self.headers.items()),
                body,
            )
            server.requests.append(recorded)
            path = split.path
            if path == "/echo":
                echo = {
                    "method": self.command,
                    "query": recorded.query,
                    "body": body.decode(),
                    "headers": {k.lower(): v for k, v in recorded.headers},
                }
                self._answer(200, json.dumps(echo).encode(), "application/json")
            elif path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                self._answer(code, json.dumps({"why": "nope"}).encode(), "application/json")
            elif path == "/text":
                self._answer(200, b"hello, world", "text/plain; charset=utf-8")
            elif path == "/image":
                self._answer(200, b"\x89PNG\r\n\x1a\n", "image/png")
            elif path == "/slow":
                server.release.wait(10)
                self._answer(200, b"{}", "application/json")
            elif path == "/token":
                server.tokens_issued += 1
                token = {"access_token": f"tok-{server.tokens_issued}", "expires_in": 3600}
                self._answer(200, json.dumps(token).encode(), "application/json")
            else:
                self._answer(404, b"no such path", "text/plain")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _any

    return Handler


@pytest.fixture
def http_server() -> Iterator[Server]:
    server = Server(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
