"""The Slack channel end to end: signed requests in, Web API calls recorded by a stub.

Requests are signed exactly as Slack documents (`v0=` + hex HMAC-SHA256 of
`v0:{timestamp}:{body}` with the signing secret). Bolt answers after its ack, so the
tests poll the stub for a bounded time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from apps import undecided_client
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from stub_server import Call, StubServer

from bot.api import create_app
from bot.channels import slack_blocks
from bot.config import Settings
from bot.engine import Engine
from bot.store import SqlLogStore

SECRET = "slack-test-signing-secret"
TOKEN = "xoxb-slack-test-token"
POST = "/chat.postMessage"
DEFINITION_ANSWER = "東京都カスタマー・ハラスメント防止条例"
SETTLE = 0.5  # how long to wait for a call that must NOT come


def slack_settings(settings: Settings, stub: StubServer, tmp: Path, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "slack_signing_secret": SecretStr(SECRET),
            "slack_bot_token": SecretStr(TOKEN),
            "slack_api_base_url": f"{stub.url}/api/",
            "database_url": f"sqlite:///{tmp / 'feedback.sqlite3'}",
            **extra,
        }
    )


def signature(timestamp: str, body: bytes, secret: str = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def send(client: TestClient, body: bytes, content_type: str, *, age: int = 0, secret: str = SECRET,
         headers: dict[str, str] | None = None) -> Any:
    timestamp = str(int(time.time()) - age)
    signed = {
        "content-type": content_type,
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature(timestamp, body, secret),
        **(headers or {}),
    }
    return client.post("/slack/events", content=body, headers=signed)


def send_json(client: TestClient, payload: dict[str, Any], **kwargs: Any) -> Any:
    return send(client, json.dumps(payload, ensure_ascii=False).encode(), "application/json", **kwargs)


def send_form(client: TestClient, form: dict[str, str], **kwargs: Any) -> Any:
    return send(client, urlencode(form).encode(), "application/x-www-form-urlencoded", **kwargs)


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-unused",
        "team_id": "T0STUB",
        "api_app_id": "A0FAQBOT",
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0STUB", "user_id": "U0FAQBOT", "is_bot": True}],
        "event": event,
    }


def mention(text: str, ts: str = "1700000000.000100", **extra: Any) -> dict[str, Any]:
    return {"type": "app_mention", "user": "U0PERSON", "text": f"<@U0FAQBOT> {text}", "ts": ts,
            "channel": "C0GENERAL", "event_ts": ts, **extra}


def direct_message(text: str, ts: str = "1700000000.000300", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel_type": "im", "user": "U0PERSON", "text": text, "ts": ts,
            "channel": "D0DIRECT", "event_ts": ts, **extra}


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@pytest.fixture()
def client(settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path) -> Iterator[TestClient]:
    stub.reset()
    with TestClient(create_app(slack_settings(settings, stub, tmp_path), engine)) as test_client:
        yield test_client


def logged(client: TestClient) -> SqlLogStore:
    assert client.app.state.query_log.flush(timeout=10)  # type: ignore[attr-defined]
    log_store: SqlLogStore = client.app.state.query_log.store  # type: ignore[attr-defined]
    return log_store


def one_post(stub: StubServer) -> Call:
    calls = stub.wait_for(POST)
    time.sleep(SETTLE)  # a second, duplicate post would arrive now
    calls = stub.calls(POST)
    assert len(calls) == 1, f"expected exactly one chat.postMessage, got {len(calls)}"
    assert calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    return calls[0]


def test_signature_matches_the_sdk() -> None:
    body, timestamp = b'{"type":"url_verification"}', "1700000000"
    assert signature(timestamp, body) == SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)


def test_url_verification_echoes_the_challenge(client: TestClient, stub: StubServer) -> None:
    response = send_json(client, {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                                  "type": "url_verification"})
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_mention_is_answered_in_its_thread_after_a_fast_ack(client: TestClient, stub: StubServer) -> None:
    started = time.monotonic()
    response = send_json(client, event_callback(mention("カスハラって何ですか")))
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0
    body = one_post(stub).body
    assert body["channel"] == "C0GENERAL" and body["thread_ts"] == "1700000000.000100"
    assert body["text"].startswith(DEFINITION_ANSWER)
    blocks = all_text(body["blocks"])
    assert DEFINITION_ANSWER in blocks and "カテゴリ：総合相談窓口" in blocks and "確信度：" in blocks


def test_direct_message_is_answered_in_the_existing_thread(client: TestClient, stub: StubServer) -> None:
    dm = direct_message("カスハラって何ですか", thread_ts="1700000000.000001")
    assert send_json(client, event_callback(dm)).status_code == 200
    body = one_post(stub).body
    assert body["channel"] == "D0DIRECT" and body["thread_ts"] == "1700000000.000001"
    assert body["text"].startswith(DEFINITION_ANSWER)


@pytest.mark.parametrize(
    "event",
    [
        direct_message("カスハラって何ですか", bot_id="B0OTHER"),
        direct_message("カスハラって何ですか", subtype="message_changed"),
        {**direct_message("カスハラって何ですか"), "channel_type": "channel"},
    ],
    ids=["bot", "subtype", "not-im"],
)
def test_bot_messages_edits_and_channel_messages_are_ignored(
    client: TestClient, stub: StubServer, event: dict[str, Any]
) -> None:
    assert send_json(client, event_callback(event)).status_code == 200
    time.sleep(SETTLE)
    assert stub.calls(POST) == []


def test_retry_of_the_same_event_is_not_answered_twice(client: TestClient, stub: StubServer) -> None:
    payload = event_callback(mention("カスハラって何ですか"), event_id="Ev0RETRYTEST")
    assert send_json(client, payload).status_code == 200
    stub.wait_for(POST)
    retry = {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    assert send_json(client, payload, headers=retry).status_code == 200
    one_post(stub)


@pytest.mark.parametrize(("secret", "age"), [("forged-secret", 0), (SECRET, 6 * 60)], ids=["forged", "stale"])
def test_forged_or_stale_requests_are_401(client: TestClient, stub: StubServer, secret: str, age: int) -> None:
    response = send_json(client, event_callback(mention("カスハラって何ですか")), secret=secret, age=age)
    assert response.status_code == 401
    time.sleep(SETTLE)
    assert stub.calls(POST) == []


def test_missing_signature_is_401(client: TestClient, stub: StubServer) -> None:
    body = json.dumps(event_callback(mention("カスハラって何ですか"))).encode()
    assert client.post("/slack/events", content=body, headers={"content-type": "application/json"}).status_code == 401


def slash(stub: StubServer, text: str) -> dict[str, str]:
    return {"token": "legacy-unused", "team_id": "T0STUB", "channel_id": "C0GENERAL", "user_id": "U0PERSON",
            "command": "/faq", "text": text, "response_url": f"{stub.url}/commands/T0STUB/1/abc",
            "trigger_id": "1.2.3"}


def test_slash_command_is_answered_ephemerally(client: TestClient, stub: StubServer) -> None:
    response = send_form(client, slash(stub, "カスハラって何ですか"))
    assert response.status_code == 200
    (call,) = stub.wait_for("/commands/T0STUB/1/abc")
    assert call.body["response_type"] == "ephemeral"
    assert call.body["text"].startswith(DEFINITION_ANSWER)
    assert stub.calls(POST) == []


def test_slash_command_without_a_question_explains_itself(client: TestClient, stub: StubServer) -> None:
    send_form(client, slash(stub, "  "))
    (call,) = stub.wait_for("/commands/T0STUB/1/abc")
    assert call.body["response_type"] == "ephemeral" and "/faq" in call.body["text"]


def click(stub: StubServer, entry_id: str, *, ephemeral: bool = False, block_id: str = "b1") -> dict[str, str]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0PERSON", "team_id": "T0STUB"},
        "team": {"id": "T0STUB"},
        "api_app_id": "A0FAQBOT",
        "trigger_id": "1.2.4",
        "response_url": f"{stub.url}/actions/T0STUB/2/def",
        "container": {"type": "message", "message_ts": "1700000000.000200", "channel_id": "C0GENERAL",
                      "is_ephemeral": ephemeral},
        "channel": {"id": "C0GENERAL", "name": "general"},
        "actions": [{"type": "button", "action_id": f"{slack_blocks.SUGGESTION_ACTION}_1", "block_id": block_id,
                     "value": entry_id, "text": {"type": "plain_text", "text": "…"}, "action_ts": "1700000001.0"}],
    }
    if not ephemeral:
        payload["message"] = {"type": "message", "ts": "1700000000.000200", "thread_ts": "1700000000.000100",
                              "text": "…", "user": "U0FAQBOT"}
    return {"payload": json.dumps(payload, ensure_ascii=False)}


def test_suggestion_click_posts_that_entry_in_the_thread(
    client: TestClient, stub: StubServer, engine: Engine
) -> None:
    entry = engine.corpus.entry("general-scope")
    assert send_form(client, click(stub, entry.id)).status_code == 200
    body = one_post(stub).body
    assert body["channel"] == "C0GENERAL" and body["thread_ts"] == "1700000000.000100"
    assert body["text"] == entry.answer
    assert entry.question in all_text(body["blocks"])


def test_suggestion_click_on_an_ephemeral_answer_stays_ephemeral(
    client: TestClient, stub: StubServer, engine: Engine
) -> None:
    entry = engine.corpus.entry("general-definition")
    assert send_form(client, click(stub, entry.id, ephemeral=True)).status_code == 200
    (call,) = stub.wait_for("/actions/T0STUB/2/def")
    assert call.body["response_type"] == "ephemeral" and call.body["replace_original"] is False
    assert call.body["text"] == entry.answer
    assert stub.calls(POST) == []


def test_ambiguous_answer_has_suggestion_buttons(
    settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path
) -> None:
    stub.reset()
    with undecided_client(slack_settings(settings, stub, tmp_path), engine) as strict_client:
        assert send_json(strict_client, event_callback(mention("セミナーのメールについて"))).status_code == 200
        body = one_post(stub).body
        (actions,) = [b for b in body["blocks"] if b["type"] == "actions"]
        buttons = actions["elements"]
        assert 1 <= len(buttons) <= 3
        assert len({b["action_id"] for b in buttons}) == len(buttons)  # unique within the block
        for button in buttons:
            assert button["action_id"].startswith(slack_blocks.SUGGESTION_ACTION)
            assert engine.corpus.entry(button["value"]).question.startswith(button["text"]["text"].rstrip("…"))
        (asked,) = logged(strict_client).asks_since()
        assert asked.channel == "slack" and asked.decision == "ambiguous"
        assert slack_blocks.ask_of_block(actions["block_id"]) == asked.ask_id

        # A click on a button records the pick against the ask that offered it.
        stub.reset()
        picked = buttons[0]["value"]
        assert send_form(strict_client, click(stub, picked, block_id=actions["block_id"])).status_code == 200
        assert one_post(stub).body["text"] == engine.corpus.entry(picked).answer
        assert [(p.ask_id, p.faq_id, p.channel) for p in logged(strict_client).picks_since()] == [
            (asked.ask_id, picked, "slack")
        ]


def test_a_mention_is_logged_with_the_user_as_a_salted_hash(
    settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path
) -> None:
    stub.reset()
    salted = slack_settings(settings, stub, tmp_path, log_salt=SecretStr("slack-test-salt-0123456789"))
    with TestClient(create_app(salted, engine)) as salted_client:
        send_json(salted_client, event_callback(mention("カスハラって何ですか")))
        one_post(stub)
        (row,) = logged(salted_client).asks_since()
    assert row.channel == "slack" and row.faq_id == "general-definition" and row.query == "カスハラって何ですか"
    assert row.user_hash and "U0PERSON" not in row.user_hash


def test_channel_off_without_secrets(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    off = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'f.sqlite3'}"})
    with TestClient(create_app(off, engine)) as off_client:
        assert send_json(off_client, {"type": "url_verification", "challenge": "c"}).status_code == 404
        assert off_client.get("/readyz").json()["channels"]["slack"] is False


def test_readyz_lists_slack_on(client: TestClient) -> None:
    assert client.get("/readyz").json()["channels"]["slack"] is True


def test_urgent_small_talk_and_the_notice_through_slack(client: TestClient, stub: StubServer) -> None:
    send_json(client, event_callback(mention("今お客さんに殴られています、助けてください")))
    urgent = one_post(stub).body
    assert urgent["blocks"][0]["text"]["text"].startswith(":rotating_light: *")
    assert "110" in all_text(urgent["blocks"]) and not [b for b in urgent["blocks"] if b["type"] == "actions"]
    stub.reset()
    send_json(client, event_callback(mention("こんにちは", ts="1700000000.000900")))
    hello = one_post(stub).body
    assert all(b["type"] == "section" for b in hello["blocks"]) and "よくあるご質問" in hello["text"]
    stub.reset()
    send_json(client, event_callback(mention("カスハラって何ですか 090-1234-5678", ts="1700000000.000901")))
    answer = one_post(stub).body
    assert answer["text"].startswith(DEFINITION_ANSWER) and "個人情報" in all_text(answer["blocks"])
