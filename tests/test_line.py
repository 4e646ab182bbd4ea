"""The LINE channel end to end: signed webhooks in, replies recorded by a loopback stub.

Requests are signed exactly as LINE documents (base64 HMAC-SHA256 of the raw body with
the channel secret, in x-line-signature); the Messaging API SDK talks to the stub.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import undecided_client
from fastapi.testclient import TestClient
from pydantic import SecretStr
from stub_server import StubServer

from bot.answer import Reply
from bot.api import create_app
from bot.channels import line, replies
from bot.config import Settings
from bot.desk import Route
from bot.engine import Engine
from bot.store import SqlLogStore

SECRET = "line-test-channel-secret"
TOKEN = "line-test-access-token"
REPLY_PATH = "/v2/bot/message/reply"
DEFINITION_ANSWER = "東京都カスタマー・ハラスメント防止条例"


def line_settings(settings: Settings, stub: StubServer, tmp: Path, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "line_channel_secret": SecretStr(SECRET),
            "line_channel_access_token": SecretStr(TOKEN),
            "line_api_base_url": stub.url,
            "database_url": f"sqlite:///{tmp / 'feedback.sqlite3'}",
            **extra,
        }
    )


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def event(kind: str = "message", *, text: str | None = None, message: dict[str, Any] | None = None,
          event_id: str | None = None, redelivery: bool = False, mode: str = "active") -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "mode": mode,
        "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": "U0123456789abcdef0123456789abcdef"},
        "webhookEventId": event_id or uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind != "unfollow":
        body["replyToken"] = uuid.uuid4().hex
    if text is not None:
        message = {"type": "text", "id": "100001", "quoteToken": "q1", "text": text}
    if message is not None:
        body["message"] = message
    return body


def postback(data: str) -> dict[str, Any]:
    body = event("postback")
    body["postback"] = {"data": data}
    return body


def logged(client: TestClient) -> SqlLogStore:
    assert client.app.state.query_log.flush(timeout=10)  # type: ignore[attr-defined]
    log_store: SqlLogStore = client.app.state.query_log.store  # type: ignore[attr-defined]
    return log_store


def post(client: TestClient, *events: dict[str, Any], signature: str | None = "sign") -> Any:
    raw = json.dumps({"destination": "U0bot", "events": list(events)}, ensure_ascii=False).encode()
    headers = {"content-type": "application/json"}
    if signature == "sign":
        headers["x-line-signature"] = sign(raw)
    elif signature is not None:
        headers["x-line-signature"] = signature
    return client.post("/line/webhook", content=raw, headers=headers)


@pytest.fixture()
def client(settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path) -> Iterator[TestClient]:
    stub.reset()
    with TestClient(create_app(line_settings(settings, stub, tmp_path), engine)) as test_client:
        yield test_client


def only_reply(stub: StubServer) -> dict[str, Any]:
    calls = stub.calls(REPLY_PATH)
    assert len(calls) == 1, f"expected exactly one reply, got {len(calls)}"
    assert calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    return calls[0].body


def test_question_is_answered_once_through_the_reply_api(client: TestClient, stub: StubServer) -> None:
    sent = event(text="カスハラって何ですか")
    response = post(client, sent)
    assert response.status_code == 200
    body = only_reply(stub)
    assert body["replyToken"] == sent["replyToken"]
    (message,) = body["messages"]
    assert message["type"] == "text"
    assert message["text"].startswith(DEFINITION_ANSWER)


def test_verification_request_with_no_events_is_200(client: TestClient, stub: StubServer) -> None:
    assert post(client).status_code == 200
    assert stub.calls() == []


@pytest.mark.parametrize("signature", [None, "", sign(b"another body"), sign(b"{}", secret="not-the-secret")])
def test_missing_or_forged_signature_is_400_and_nothing_is_sent(
    client: TestClient, stub: StubServer, signature: str | None
) -> None:
    response = post(client, event(text="カスハラって何ですか"), signature=signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert stub.calls() == []


def test_redelivered_event_is_answered_once(client: TestClient, stub: StubServer) -> None:
    first = event(text="カスハラって何ですか", event_id="01HREDELIVERYTEST000000001")
    again = {**first, "replyToken": "another-token", "deliveryContext": {"isRedelivery": True}}
    assert post(client, first).status_code == 200
    assert post(client, again).status_code == 200
    assert len(stub.calls(REPLY_PATH)) == 1


def test_ambiguous_question_offers_quick_replies(
    settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path
) -> None:
    stub.reset()
    with undecided_client(line_settings(settings, stub, tmp_path), engine) as strict_client:
        assert post(strict_client, event(text="セミナーのメールについて")).status_code == 200
        (message,) = only_reply(stub)["messages"]
        items = message["quickReply"]["items"]
        assert 1 <= len(items) <= 3
        (asked,) = logged(strict_client).asks_since()
        assert asked.channel == "line" and asked.decision == "ambiguous"
        for item in items:
            action = item["action"]
            assert action["type"] == "postback"
            assert 1 <= len(action["label"]) <= 20
            ask_id, faq_id = line.parse_pick(action["data"]) or ("", "")
            assert ask_id == asked.ask_id and action["displayText"] == engine.corpus.entry(faq_id).question
            assert action["displayText"] in message["text"]  # listed in full, since labels are cut

        # Tapping one answers with that entry and records the pick against the ask.
        stub.reset()
        ask_id, faq_id = line.parse_pick(items[0]["action"]["data"]) or ("", "")
        assert post(strict_client, postback(items[0]["action"]["data"])).status_code == 200
        (entry_message,) = only_reply(stub)["messages"]
        assert entry_message["text"] == engine.corpus.entry(faq_id).answer
        assert [(p.ask_id, p.faq_id, p.channel) for p in logged(strict_client).picks_since()] == [(ask_id, faq_id, "line")]


def test_a_question_is_logged_with_the_user_as_a_salted_hash(
    settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path
) -> None:
    stub.reset()
    salted = line_settings(settings, stub, tmp_path, log_salt=SecretStr("line-test-salt-0123456789"))
    with TestClient(create_app(salted, engine)) as salted_client:
        post(salted_client, event(text="カスハラって何ですか　090-1234-5678"))
        (row,) = logged(salted_client).asks_since()
    assert row.channel == "line" and row.query == "カスハラって何ですか　〔電話番号〕"
    assert row.user_hash and "U0123456789abcdef" not in row.user_hash


def test_an_unknown_postback_is_ignored(client: TestClient, stub: StubServer) -> None:
    assert post(client, postback("action=other&x=1"), postback(line.pick_data("a1", "no-such-entry"))).status_code == 200
    (message,) = only_reply(stub)["messages"]
    assert message["text"] == replies.UNKNOWN_ENTRY


def test_out_of_scope_question_gets_the_route_and_hours(client: TestClient, stub: StubServer) -> None:
    post(client, event(text="明日の東京の天気は？"))
    (message,) = only_reply(stub)["messages"]
    assert "総合相談窓口" in message["text"] and "相談フォーム" in message["text"]
    assert "受付時間" in message["text"] or "平日" in message["text"]


def test_sticker_gets_a_polite_reply(client: TestClient, stub: StubServer) -> None:
    sticker = {"type": "sticker", "id": "100002", "quoteToken": "q2", "packageId": "446",
               "stickerId": "1988", "stickerResourceType": "STATIC"}
    assert post(client, event(message=sticker)).status_code == 200
    (message,) = only_reply(stub)["messages"]
    assert message["text"] == replies.NOT_TEXT


def test_unknown_message_type_gets_a_polite_reply(client: TestClient, stub: StubServer) -> None:
    assert post(client, event(message={"type": "hologram", "id": "100003"})).status_code == 200
    (message,) = only_reply(stub)["messages"]
    assert message["text"] == replies.NOT_TEXT


def test_standby_mode_is_not_answered(client: TestClient, stub: StubServer) -> None:
    assert post(client, event(text="カスハラって何ですか", mode="standby")).status_code == 200
    assert stub.calls() == []


def test_follow_is_greeted_and_other_events_are_ignored(client: TestClient, stub: StubServer) -> None:
    assert post(client, event("follow")).status_code == 200
    (message,) = only_reply(stub)["messages"]
    assert message["text"] == replies.GREETING
    stub.reset()
    assert post(client, event("unfollow"), event("leave"), event("somethingNew")).status_code == 200
    assert stub.calls() == []


def test_line_api_failure_is_logged_not_an_error(client: TestClient, stub: StubServer) -> None:
    stub.answer_with(REPLY_PATH, 400, {"message": "Invalid reply token"})
    response = post(client, event(text="カスハラって何ですか"))
    assert response.status_code == 200
    assert len(stub.calls(REPLY_PATH)) == 1


def test_batch_of_events_each_get_their_reply(client: TestClient, stub: StubServer) -> None:
    events = [event(text="カスハラって何ですか"), event(text="夜しか時間がない")]
    assert post(client, *events).status_code == 200
    tokens = sorted(c.body["replyToken"] for c in stub.calls(REPLY_PATH))
    assert tokens == sorted(e["replyToken"] for e in events)


def test_too_long_text_is_refused_politely(client: TestClient, stub: StubServer) -> None:
    post(client, event(text="あ" * 1001))
    (message,) = only_reply(stub)["messages"]
    assert "1000文字以内" in message["text"]


def test_signed_body_that_is_not_a_webhook_is_400(client: TestClient, stub: StubServer) -> None:
    raw = b'{"destination": "U0bot"}'
    response = client.post("/line/webhook", content=raw, headers={"x-line-signature": sign(raw)})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert stub.calls() == []


def test_while_loading_the_reply_asks_to_try_later(
    settings: Settings, engine: Engine, stub: StubServer, tmp_path: Path
) -> None:
    app = create_app(line_settings(settings, stub, tmp_path), engine)
    stub.reset()
    with TestClient(app) as loading_client:
        app.state.engine = None  # as between start-up and the end of loading
        assert post(loading_client, event(text="カスハラって何ですか")).status_code == 200
    (message,) = only_reply(stub)["messages"]
    assert message["text"] == replies.NOT_READY


def test_reply_text_respects_lines_limit() -> None:
    route = Route(kind="phone", message="窓口へ", form_url=None, phone=None, hours="平日", open_now=None)
    long_reply = Reply(ask_id="x", answered=False, decision="fallback", answer="あ" * 6000, faq=None,
                       confidence=0.1, suggestions=[], route=route)
    (message,) = line.reply_messages(long_reply)
    assert len(message.text) == line.TEXT_LIMIT and message.text.endswith("…")


def test_channel_off_without_secrets(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    off = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'f.sqlite3'}"})
    with TestClient(create_app(off, engine)) as off_client:
        assert post(off_client, event(text="カスハラ")).status_code == 404
        assert off_client.get("/readyz").json()["channels"]["line"] is False


def test_readyz_lists_line_on(client: TestClient) -> None:
    assert client.get("/readyz").json()["channels"]["line"] is True


def test_urgent_small_talk_and_the_notice_through_line(client: TestClient, stub: StubServer) -> None:
    post(client, event(text="今お客さんに殴られています、助けてください"))
    (urgent,) = only_reply(stub)["messages"]
    assert urgent["text"].startswith(replies.URGENT_MARK) and "110" in urgent["text"]
    assert "quickReply" not in urgent or not urgent["quickReply"]
    stub.reset()
    post(client, event(text="こんにちは"))
    (hello,) = only_reply(stub)["messages"]
    assert "よくあるご質問" in hello["text"] and "申し訳" not in hello["text"]
    stub.reset()
    post(client, event(text="カスハラって何ですか 090-1234-5678"))
    (answer,) = only_reply(stub)["messages"]
    assert answer["text"].startswith(DEFINITION_ANSWER)
    assert answer["text"].rstrip().endswith("相談フォームからお寄せください。") and replies.NOTICE_MARK in answer["text"]
