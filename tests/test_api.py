"""The staff HTTP contract, end to end with the real model and FAISS index."""

from __future__ import annotations

import pytest
from apps import undecided_client
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.engine import Engine


def ask(client: TestClient, query: object, **extra: object):  # type: ignore[no-untyped-def]
    return client.post("/v1/ask", json={"query": query, **extra})


def test_definition_question_is_answered(client: TestClient) -> None:
    response = ask(client, "カスハラって何ですか")
    assert response.status_code == 200
    body = response.json()
    assert body["answered"] is True and body["decision"] == "answered"
    assert body["faq"]["id"] == "general-definition"
    assert body["faq"]["question"] == "「カスタマーハラスメント」の定義を教えてください。"
    assert body["faq"]["category"] == "総合相談窓口"
    assert body["answer"].startswith("東京都カスタマー・ハラスメント防止条例第2条第5号")
    assert 0.0 <= body["confidence"] <= 1.0 and body["confidence"] >= 0.5
    assert body["route"] is None
    assert body["ask_id"]


@pytest.mark.parametrize(
    ("query", "entry_id"),
    [
        ("夜しか時間がない", "general-daytime-unavailable"),
        ("セミナーってZoomでやるの？", "seminar-format"),
        ("派遣される専門家は毎回同じ人ですか", "dispatch-same-expert"),
    ],
)
def test_everyday_questions_find_their_entry(client: TestClient, query: str, entry_id: str) -> None:
    body = ask(client, query, channel="web").json()
    assert body["answered"] is True
    assert body["faq"]["id"] == entry_id


@pytest.mark.parametrize("query", ["明日の東京の天気は？", "住民票の写しを取りたい", "asdfghjkl"])
def test_out_of_scope_routes_to_the_desk(client: TestClient, query: str) -> None:
    body = ask(client, query).json()
    assert body["answered"] is False
    assert body["faq"] is None
    route = body["route"]
    assert route["kind"] in ("phone", "form")
    assert "総合相談窓口" in route["message"] and "相談フォーム" in route["message"]
    assert route["hours"] and "open_now" in route
    assert body["confidence"] < 0.5


def test_ambiguous_query_offers_suggestions(settings: Settings, engine: Engine) -> None:
    """With the real retrieval, a vague seminar question sits between entries: with an
    answer threshold no query reaches, it must come back as suggestions, not a guess."""
    with undecided_client(settings, engine) as client:
        body = ask(client, "セミナーのメールについて").json()
    assert body["answered"] is False and body["decision"] == "ambiguous"
    assert body["faq"] is None and body["route"] is not None
    ids = [s["id"] for s in body["suggestions"]]
    assert 1 <= len(ids) <= 3 and any(i.startswith("seminar-") for i in ids)
    assert all(0.0 <= s["confidence"] <= 1.0 for s in body["suggestions"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "   　"}, "query"),
        ({"query": "あ" * 1001}, "query"),
        ({"query": 123}, "query"),
        ({"query": None}, "query"),
        ({}, "query"),
        ({"query": "カスハラ", "channel": "fax"}, "channel"),
        ({"query": "カスハラ", "session_id": 5}, "session_id"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client: TestClient, payload: dict[str, object], field: str) -> None:
    response = client.post("/v1/ask", json=payload)
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert field in [f["field"] for f in error["fields"]]
    assert error["message"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/ask", content=b'{"query": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    response = client.post("/v1/ask", json=["カスハラ"])
    assert response.status_code == 422


def test_thousand_characters_are_accepted(client: TestClient) -> None:
    assert ask(client, "カスハラ" * 250).status_code == 200


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/v1/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_faq_list(client: TestClient) -> None:
    body = client.get("/v1/faq").json()
    assert body["categories"] == ["総合相談窓口", "団体・企業向けセミナー", "団体向け専門家派遣"]
    assert len(body["entries"]) == 20 and body["entries"][0]["id"] == "general-definition"


def test_health_ready_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["entries"] == 20
    assert client.get("/docs").status_code == 200
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]


def test_not_ready_is_503_with_the_fix(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = settings.model_copy(update={"index_dir": tmp_path / "missing"})
    app = create_app(broken)
    with TestClient(app) as client:
        for _ in range(200):  # the loader runs in the background; wait for its verdict
            if app.state.load_error:
                break
            import time

            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "python -m bot build" in ready.json()["detail"]
        response = ask(client, "カスハラ")
        assert response.status_code == 503 and "python -m bot build" in response.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200
