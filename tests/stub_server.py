"""A loopback stand-in for the LINE and Slack Web APIs that records every call.

The SDKs are pointed at it through FAQBOT_LINE_API_BASE_URL / FAQBOT_SLACK_API_BASE_URL
(and Slack's response_url), so the tests check what the platform would have received
without leaving 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Call:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, a form as {key: value}, or the raw text


def platform_answer(path: str) -> tuple[int, dict[str, Any]]:
    """What LINE or Slack answers on success for this path."""
    if path.startswith("/v2/bot/"):
        return 200, {"sentMessages": [{"id": "1", "quoteToken": "stub-quote"}]}
    if path.endswith("/auth.test"):
        return 200, {"ok": True, "url": "https://stub.slack.test/", "team": "stub", "user": "faqbot",
                     "team_id": "T0STUB", "user_id": "U0FAQBOT", "bot_id": "B0FAQBOT"}
    return 200, {"ok": True, "channel": "C0STUB", "ts": "1700000000.999999"}


class StubServer:
    """ThreadingHTTPServer on 127.0.0.1 with an ephemeral port, serving in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._overrides: dict[str, tuple[int, dict[str, Any]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="stub-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._overrides.clear()

    def answer_with(self, path_suffix: str, status: int, body: dict[str, Any]) -> None:
        """Make calls whose path ends with path_suffix fail (or answer) as given."""
        with self._lock:
            self._overrides[path_suffix] = (status, body)

    def calls(self, path_suffix: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.path.endswith(path_suffix)]

    def wait_for(self, path_suffix: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Poll until `count` matching calls arrived (or the timeout passed); returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls(path_suffix)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.calls(path_suffix)

    def _record(self, call: Call) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._calls.append(call)
            for suffix, answer in self._overrides.items():
                if call.path.endswith(suffix):
                    return answer
        return platform_answer(call.path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode("utf-8")
                status, answer = stub._record(
                    Call("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, _parse(raw))
                )
                payload = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
                pass

        return Handler


def _parse(raw: str) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        form = parse_qs(raw)
        return {k: v[0] for k, v in form.items()} if form else raw


@contextmanager
def running_stub() -> Iterator[StubServer]:
    stub = StubServer().start()
    try:
        yield stub
    finally:
        stub.stop()

