"""The web widget: its assets, the feedback and entry endpoints, CORS, and the widget
itself in a real headless Chromium against the real app."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.engine import Engine, assemble
from bot.store import SqlLogStore

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE = "https://www.example.lg.jp"


def logged(app: FastAPI) -> SqlLogStore:
    """The app's log store once everything queued so far is written."""
    assert app.state.query_log.flush(timeout=10)
    log_store: SqlLogStore = app.state.query_log.store
    return log_store


def with_database(settings: Settings, path: Path, **extra: object) -> Settings:
    return settings.model_copy(update={"database_url": f"sqlite:///{path}", **extra})


@pytest.fixture(scope="module")
def web_app(settings: Settings, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    folder = tmp_path_factory.mktemp("web")
    return create_app(with_database(settings, folder / "db" / "feedback.sqlite3", cors_origins=[SITE]), engine)


@pytest.fixture(scope="module")
def web(web_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(web_app) as client:
        yield client


# ---- assets -------------------------------------------------------------------------


def test_widget_script_is_javascript(web: TestClient) -> None:
    response = web.get("/widget/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "document.currentScript" in response.text and "innerHTML" not in response.text


def test_widget_stylesheet_is_css(web: TestClient) -> None:
    response = web.get("/widget/widget.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")


def test_demo_page_embeds_the_widget(web: TestClient) -> None:
    response = web.get("/widget/demo")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert '<html lang="ja">' in response.text
    assert '<script src="widget.js" defer' in response.text
    home = web.get("/", follow_redirects=False)
    assert home.status_code in (302, 307) and home.headers["location"] == "widget/demo"


def test_readyz_lists_the_web_channel(web: TestClient) -> None:
    assert web.get("/readyz").json()["channels"]["web"] is True


# ---- GET /v1/faq/{id} -----------------------------------------------------------------


def test_entry_by_id(web: TestClient) -> None:
    body = web.get("/v1/faq/general-definition").json()
    assert body["id"] == "general-definition" and body["category"] == "総合相談窓口"
    assert body["answer"].startswith("東京都カスタマー・ハラスメント防止条例")


def test_unknown_entry_is_a_json_404_naming_the_field(web: TestClient) -> None:
    response = web.get("/v1/faq/no-such-entry")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["fields"][0]["field"] == "faq_id"


# ---- POST /v1/feedback ----------------------------------------------------------------


def test_feedback_is_recorded(web: TestClient, web_app: FastAPI) -> None:
    ask_id = web.post("/v1/ask", json={"query": "カスハラって何ですか", "channel": "web"}).json()["ask_id"]
    response = web.post("/v1/feedback", json={"ask_id": ask_id, "helpful": True})
    assert response.status_code == 201
    assert response.json()["ask_id"] == ask_id and response.json()["helpful"] is True
    web.post("/v1/feedback", json={"ask_id": ask_id, "helpful": False, "faq_id": "general-scope"})
    rows = logged(web_app).for_ask(ask_id)
    assert [(r.helpful, r.faq_id) for r in rows] == [(True, None), (False, "general-scope")]
    assert rows[0].created_at.utcoffset() == dt.timedelta(hours=9)  # Asia/Tokyo


def test_feedback_on_a_64_character_ask_id_passes_validation_and_is_unknown(web: TestClient) -> None:
    assert web.post("/v1/feedback", json={"ask_id": "a" * 64, "helpful": False}).status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"helpful": True}, "ask_id"),
        ({"ask_id": "", "helpful": True}, "ask_id"),
        ({"ask_id": "   ", "helpful": True}, "ask_id"),
        ({"ask_id": "a" * 65, "helpful": True}, "ask_id"),
        ({"ask_id": 123, "helpful": True}, "ask_id"),
        ({"ask_id": None, "helpful": True}, "ask_id"),
        ({"ask_id": "abc"}, "helpful"),
        ({"ask_id": "abc", "helpful": "true"}, "helpful"),
        ({"ask_id": "abc", "helpful": 1}, "helpful"),
        ({"ask_id": "abc", "helpful": None}, "helpful"),
        ({"ask_id": "abc", "helpful": True, "faq_id": "x" * 65}, "faq_id"),
    ],
)
def test_bad_feedback_is_a_4xx_naming_the_field(
    web: TestClient, web_app: FastAPI, payload: dict[str, object], field: str
) -> None:
    response = web.post("/v1/feedback", json=payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in [f["field"] for f in error["fields"]]
    if isinstance(payload.get("ask_id"), str):
        assert logged(web_app).for_ask(str(payload["ask_id"])) == []


def test_malformed_feedback_json_is_400(web: TestClient) -> None:
    response = web.post("/v1/feedback", content=b'{"ask_id": ', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"


# ---- CORS -----------------------------------------------------------------------------


def test_cors_allows_only_configured_origins(web: TestClient) -> None:
    def preflight(origin: str) -> dict[str, str]:
        headers = {"origin": origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type"}
        return dict(web.options("/v1/ask", headers=headers).headers)

    assert preflight(SITE).get("access-control-allow-origin") == SITE
    assert "access-control-allow-origin" not in preflight("https://evil.example.com")
    ok = web.get("/v1/faq/general-definition", headers={"origin": SITE})
    assert ok.headers.get("access-control-allow-origin") == SITE
    other = web.get("/v1/faq/general-definition", headers={"origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_without_configured_origins(client: TestClient) -> None:
    response = client.get("/healthz", headers={"origin": SITE})
    assert "access-control-allow-origin" not in response.headers


# ---- the widget in a real browser ------------------------------------------------------


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run the app with uvicorn on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def test_widget_in_a_real_browser(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """A person's whole visit, at phone size: keyboard, answer, suggestion, injection, 👍."""
    from playwright.sync_api import Route, expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/install-browser.sh (make test does)"
    # Every answer carries its runners-up as suggestions, whatever the calibration makes
    # of them: this test is about the widget, not about the confidence model.
    local = with_database(settings, tmp_path / "feedback.sqlite3", suggest_threshold=1e-6)
    app = create_app(local, assemble(local, engine.corpus, engine.faq_index, engine.text))
    blocked: list[str] = []
    page_errors: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    expect.set_options(timeout=10_000)
    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 360, "height": 640}, locale="ja-JP", timezone_id="Asia/Tokyo")
            page.set_default_timeout(10_000)
            page.set_default_navigation_timeout(15_000)
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.route("**/*", loopback_only)
            page.goto(f"{base}/widget/demo")

            launcher = page.locator(".launcher")
            panel = page.locator("#faqbot-panel")
            field = page.get_by_label("ご質問", exact=True)
            expect(launcher).to_have_attribute("aria-controls", "faqbot-panel")
            expect(launcher).to_have_attribute("aria-expanded", "false")
            expect(launcher).to_have_accessible_name("ご質問はこちら（よくあるご質問のチャットを開く）")
            expect(panel).to_be_hidden()

            # Keyboard only: focus the launcher, Enter opens, type, Enter sends.
            launcher.focus()
            page.keyboard.press("Enter")
            expect(panel).to_be_visible()
            expect(launcher).to_have_attribute("aria-expanded", "true")
            expect(field).to_be_focused()
            page.keyboard.type("カスハラって何ですか")
            with page.expect_response("**/v1/ask") as asked:
                page.keyboard.press("Enter")
            reply = asked.value.json()
            assert reply["answered"] is True and reply["faq"]["id"] == "general-definition"
            answer = page.locator(".message.bot").last
            expect(answer.locator(".answer")).to_contain_text("東京都カスタマー・ハラスメント防止条例")
            expect(answer.locator(".category-badge")).to_have_text("カテゴリ：総合相談窓口")
            expect(answer).to_be_focused()  # focus moves to the new message
            expect(page.locator("[role=log]")).to_have_attribute("aria-live", "polite")
            (ROOT / "artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "artifacts" / "widget.png"))

            # 👍 on that answer lands in the store.
            answer.get_by_role("button", name="役に立った", exact=True).click()
            expect(answer.locator(".feedback-status")).to_have_text("ご意見ありがとうございました。")
            rows = logged(app).for_ask(reply["ask_id"])
            assert [(r.helpful, r.faq_id) for r in rows] == [(True, "general-definition")]
            logged_ask = logged(app).ask(reply["ask_id"])
            assert logged_ask is not None and logged_ask.channel == "web" and logged_ask.query == "カスハラって何ですか"

            # A suggestion shows that entry's answer.
            assert reply["suggestions"], "an answer comes with related entries to pick"
            first = reply["suggestions"][0]
            suggestions = answer.locator("button.suggestion")
            assert 1 <= suggestions.count() <= 3
            with page.expect_response("**/v1/pick") as picked_response:
                suggestions.first.click()
            assert picked_response.value.status == 201
            picked = page.locator(".message.bot").last
            expect(picked.locator(".faq-question")).to_contain_text(first["question"])
            expect(picked.locator(".answer")).to_have_text(engine.corpus.entry(first["id"]).answer)
            expect(picked.locator(".category-badge")).to_have_text(f"カテゴリ：{first['category']}")
            picks = [(p.ask_id, p.faq_id, p.channel) for p in logged(app).picks_since()]
            assert picks == [(reply["ask_id"], first["id"], "web")], "the pick is recorded against the ask"

            # Markup typed by a person is shown as text and never runs.
            payload = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
            field.fill(payload)
            with page.expect_response("**/v1/ask"):
                field.press("Enter")
            expect(page.locator(".message.user .text").last).to_have_text(payload)
            not_answered = page.locator(".message.bot").last
            expect(not_answered.locator(".route")).to_contain_text("総合相談窓口")
            assert page.locator(".faqbot img, .faqbot script").count() == 0
            assert page.evaluate("typeof window.__xss") == "undefined"

            # Small talk is plain text; danger now gets a card that stands out, numbers first.
            field.fill("こんにちは")
            with page.expect_response("**/v1/ask"):
                field.press("Enter")
            expect(page.locator(".message.bot").last.locator(".smalltalk")).to_contain_text("よくあるご質問")
            field.fill("今お客さんに殴られています、助けてください")
            with page.expect_response("**/v1/ask"):
                field.press("Enter")
            urgent = page.locator(".message.bot").last.locator(".urgent")
            expect(urgent).to_be_visible()
            expect(urgent).to_have_attribute("role", "alert")
            expect(urgent.locator("a.call").first).to_have_attribute("href", "tel:110")
            page.screenshot(path=str(ROOT / "artifacts" / "widget-urgent.png"))
            field.fill("カスハラって何ですか 090-1234-5678")
            with page.expect_response("**/v1/ask"):
                field.press("Enter")
            expect(page.locator(".message.bot").last.locator(".notice")).to_contain_text("個人情報")

            # Escape closes and gives focus back to the launcher.
            field.focus()
            page.keyboard.press("Escape")
            expect(panel).to_be_hidden()
            expect(launcher).to_be_focused()
            expect(launcher).to_have_attribute("aria-expanded", "false")
        finally:
            browser.close()
    assert page_errors == [] and blocked == []
