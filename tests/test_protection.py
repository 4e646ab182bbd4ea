"""Abuse limits on the public service: body size, rate per client and per chat user,
browser headers, and what several replicas share through a real Redis server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from servers import running_redis
from starlette.requests import Request
from stub_server import running_stub

from bot.api import create_app
from bot.api.protection import client_address
from bot.channels.dedupe import RedisSeenIds
from bot.config import Settings
from bot.engine import Engine
from bot.ratelimit import RateLimiter

ROOT = Path(__file__).resolve().parent.parent


def app_settings(settings: Settings, tmp: Path, **extra: object) -> Settings:
    return settings.model_copy(update={"database_url": f"sqlite:///{tmp / 'log.sqlite3'}", **extra})


@pytest.fixture()
def client(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings(settings, tmp_path, rate_limit="3/minute"), engine)) as test_client:
        yield test_client


def test_a_body_over_the_cap_is_a_json_413(client: TestClient) -> None:
    big = json.dumps({"query": "あ" * 10, "padding": "x" * 17_000})
    response = client.post("/v1/ask", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: the body is counted as it streams
        yield b'{"query": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    streamed = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_the_query_cap_stays_422(client: TestClient) -> None:
    assert client.post("/v1/ask", json={"query": "あ" * 1001}).status_code == 422


def test_over_the_rate_limit_is_429_with_retry_after_and_a_polite_message(client: TestClient) -> None:
    statuses = [client.post("/v1/ask", json={"query": "カスハラって何ですか"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = client.post("/v1/ask", json={"query": "カスハラって何ですか"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "時間をおいて" not in error["message"] and "秒ほどおいてから" in error["message"]
    assert client.post("/v1/feedback", json={"ask_id": "x", "helpful": True}).status_code == 429
    assert client.get("/healthz").status_code == 200, "only the public routes are limited"


def request_from(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1234)})


def test_the_client_is_the_peer_or_the_hop_a_trusted_proxy_added() -> None:
    trusted = Settings(trusted_proxies=["10.0.0.0/8"]).proxy_networks
    assert client_address(request_from("203.0.113.5", "198.51.100.1"), trusted) == "203.0.113.5"
    assert client_address(request_from("10.0.0.2", "198.51.100.1"), trusted) == "198.51.100.1"
    # A client may forge the start of the header, not the hop the proxy appended.
    assert client_address(request_from("10.0.0.2", "1.2.3.4, 198.51.100.1"), trusted) == "198.51.100.1"
    assert client_address(request_from("10.0.0.2", "198.51.100.1, 10.0.0.9"), trusted) == "198.51.100.1"
    assert client_address(request_from("10.0.0.2"), []) == "10.0.0.2"


@pytest.mark.parametrize(("name", "value"), [("rate_limit", "lots"), ("trusted_proxies", ["not-an-ip"])])
def test_bad_limit_settings_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{name: value})


def test_off_disables_the_limit() -> None:
    limiter = RateLimiter("off")
    assert all(limiter.allow("k") for _ in range(100))


def test_html_gets_a_content_security_policy_and_every_response_nosniff(client: TestClient) -> None:
    page = client.get("/widget/demo")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    api = client.get("/healthz")
    assert api.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in api.headers


def test_no_stack_trace_or_path_in_an_error(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    app = create_app(app_settings(settings, tmp_path), engine)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"secret detail in {ROOT}")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.text and str(ROOT) not in response.text and "Traceback" not in response.text


# ---- LINE per user -------------------------------------------------------------------

LINE_SECRET = "line-limit-test-secret"


def line_event(text: str, user: str) -> dict[str, object]:
    return {
        "type": "message", "mode": "active", "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": user}, "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False}, "replyToken": uuid.uuid4().hex,
        "message": {"type": "text", "id": "1", "quoteToken": "q", "text": text},
    }


def signed(event: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"destination": "U0bot", "events": [event]}, ensure_ascii=False).encode()
    signature = base64.b64encode(hmac.new(LINE_SECRET.encode(), raw, hashlib.sha256).digest()).decode()
    return raw, {"content-type": "application/json", "x-line-signature": signature}


def test_line_is_limited_per_user_not_per_address(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    with running_stub() as stub:
        line = app_settings(
            settings, tmp_path, rate_limit="2/minute", line_channel_secret=SecretStr(LINE_SECRET),
            line_channel_access_token=SecretStr("line-limit-test-token"), line_api_base_url=stub.url,
        )
        with TestClient(create_app(line, engine)) as test_client:
            for user in ("Ualice", "Ualice", "Ualice", "Ubob"):
                raw, headers = signed(line_event("カスハラって何ですか", user))
                assert test_client.post("/line/webhook", content=raw, headers=headers).status_code == 200
        texts = [c.body["messages"][0]["text"] for c in stub.calls("/v2/bot/message/reply")]
    assert len(texts) == 4
    assert [("秒ほどおいてから" in t) for t in texts] == [False, False, True, False]


# ---- several replicas sharing one Redis -----------------------------------------------


def test_redis_seen_ids_are_shared() -> None:
    with running_redis() as url:
        a, b = RedisSeenIds(url), RedisSeenIds(url)
        assert a.first_time("ev-1") and not b.first_time("ev-1") and b.first_time("ev-2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_replica_processes_share_event_ids_and_rate_limits(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """Two `python -m bot serve` processes behind no balancer at all: an event redelivered
    to the other replica is answered once, and one client is limited across both."""
    with running_redis() as redis_url, running_stub() as stub:
        env = {
            **os.environ,
            "FAQBOT_CORPUS_DIR": str(settings.corpus_dir),
            "FAQBOT_INDEX_DIR": str(settings.index_dir),
            "FAQBOT_MODEL": settings.model,
            "FAQBOT_LOG_LEVEL": "WARNING",
            "FAQBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
            "FAQBOT_REDIS_URL": redis_url,
            "FAQBOT_RATE_LIMIT": "3/minute",
            "FAQBOT_LINE_CHANNEL_SECRET": LINE_SECRET,
            "FAQBOT_LINE_CHANNEL_ACCESS_TOKEN": "line-limit-test-token",
            "FAQBOT_LINE_API_BASE_URL": stub.url,
        }
        ports = [free_port(), free_port()]
        procs = [
            subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env={**env, "FAQBOT_PORT": str(p)})
            for p in ports
        ]
        try:
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            deadline = time.monotonic() + 180
            for base, proc in zip(bases, procs):
                while True:
                    assert proc.poll() is None, "a replica exited"
                    try:
                        if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, "a replica did not become ready"
                    time.sleep(0.5)
            raw, headers = signed(line_event("カスハラって何ですか", "Ucarol"))
            for base in bases:  # delivered to one replica, redelivered to the other
                assert httpx.post(f"{base}/line/webhook", content=raw, headers=headers, timeout=30).status_code == 200
            assert len(stub.calls("/v2/bot/message/reply")) == 1
            statuses = [
                httpx.post(f"{bases[i % 2]}/v1/ask", json={"query": "夜しか時間がない"}, timeout=30).status_code
                for i in range(4)
            ]
            assert statuses == [200, 200, 200, 429]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
