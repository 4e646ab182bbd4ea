"""Metrics, request ids and access lines, on the real app with the real engine."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.api import create_app
from bot.api.observability import JsonFormatter, configure_json_logging, install_observability, observe_decision, observe_reload
from bot.config import Settings
from bot.engine import Engine

MARKER = "テスト用の一意な文字列XYZ"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _app(settings: Settings, tmp_path: Path, engine: Engine | None, name: str = "l") -> FastAPI:
    local = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / f'{name}.sqlite3'}"})
    return create_app(local, engine)


@pytest.fixture()
def app(settings: Settings, engine: Engine, tmp_path: Path) -> FastAPI:
    app = _app(settings, tmp_path, engine)
    install_observability(app)
    return app


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples) -> set[str]:
    return {v for _, labels in samples for _, v in labels}


def test_metrics_is_prometheus_text_with_every_name(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "faqbot_requests",
        "faqbot_request_duration_seconds",
        "faqbot_decisions",
        "faqbot_reloads",
        "faqbot_reload_duration_seconds",
        "faqbot_query_log_written",
        "faqbot_query_log_write_failures",
        "faqbot_query_log_dropped",
        "faqbot_query_log_queued",
        "faqbot_index_entries",
        "faqbot_build_info",
        "faqbot_ready",
    } <= names
    assert "faqbot_requests_total" in response.text


def test_an_ask_counts_once_under_its_route(client: TestClient) -> None:
    before = scrape(client)
    assert client.post("/v1/ask", json={"query": "カスハラって何ですか"}).status_code == 200
    after = scrape(client)
    labels = {"route": "/v1/ask", "method": "POST", "status": "200"}
    assert value(after, "faqbot_requests_total", **labels) == value(before, "faqbot_requests_total", **labels) + 1
    count = "faqbot_request_duration_seconds_count"
    assert value(after, count, route="/v1/ask") == value(before, count, route="/v1/ask") + 1


def test_a_missing_entry_counts_under_the_template_not_the_id(client: TestClient) -> None:
    labels = {"route": "/v1/faq/{faq_id}", "method": "GET", "status": "404"}
    before = value(scrape(client), "faqbot_requests_total", **labels)
    assert client.get("/v1/faq/nope-4711").status_code == 404
    after = scrape(client)
    assert value(after, "faqbot_requests_total", **labels) == before + 1
    assert not any("nope-4711" in v for v in label_values(after))


def test_an_unknown_path_counts_as_other(client: TestClient) -> None:
    labels = {"route": "other", "method": "GET", "status": "404"}
    before = value(scrape(client), "faqbot_requests_total", **labels)
    assert client.get("/no/such/place-8812").status_code == 404
    after = scrape(client)
    assert value(after, "faqbot_requests_total", **labels) == before + 1
    assert not any("place-8812" in v for v in label_values(after))


def test_an_unusual_method_does_not_become_a_label(client: TestClient) -> None:
    client.request("BREW", "/healthz")
    samples = scrape(client)
    assert value(samples, "faqbot_requests_total", route="/healthz", method="other", status="405") >= 1
    assert "BREW" not in label_values(samples)


def test_a_request_id_is_made_when_missing(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_a_sane_request_id_is_kept(client: TestClient) -> None:
    given = "edge-proxy.7F_a1b2c3" + "x" * 44  # 64 characters, the longest kept
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given
    assert client.post("/v1/ask", json={"query": "相談窓口"}, headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize("bad", [b"abc\nxyz", b"a" * 200, b"a" * 65, b"a b", b"<script>", "ｉｄ".encode(), b""])
def test_an_unsafe_request_id_is_replaced(client: TestClient, bad: bytes) -> None:
    response = client.get("/healthz", headers={b"X-Request-ID": bad})
    returned = response.headers.get_list("x-request-id")
    assert len(returned) == 1
    assert returned[0].encode() != bad and len(returned[0]) == 32


def test_the_access_line_is_json_without_what_the_person_typed(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.access")
    response = client.post("/v1/ask?debug=1&q=secretvalue", json={"query": f"{MARKER}について教えて"})
    assert response.status_code == 200
    records = [r for r in caplog.records if r.name == "bot.access"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["request_id"] == response.headers["x-request-id"]
    assert fields["method"] == "POST"
    assert fields["route"] == "/v1/ask"
    assert fields["status"] == 200
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] > 0
    assert fields["client"] == "testclient"
    assert fields["logger"] == "bot.access" and fields["level"] == "INFO"
    assert fields["ts"].endswith("+09:00")
    for leaked in (MARKER, "XYZ", "?", "secretvalue", "debug"):
        assert leaked not in line


def test_the_access_line_names_the_template_for_ids(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.access")
    client.get("/v1/faq/person-typed-id-99")
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "bot.access"]
    assert len(lines) == 1
    assert json.loads(lines[0])["route"] == "/v1/faq/{faq_id}"
    assert "person-typed-id-99" not in lines[0]


def test_index_figures_follow_the_live_engine(app: FastAPI, client: TestClient, engine: Engine) -> None:
    samples = scrape(client)
    assert value(samples, "faqbot_index_entries") == len(engine.corpus.entries) > 0
    assert value(samples, "faqbot_ready") == 1
    info = {"version": app.version, "model": engine.embedder.model_id, "index_built_at": engine.index_built_at or ""}
    assert value(samples, "faqbot_build_info", **info) == 1
    app.state.engine = None  # as while a lifespan is still loading
    try:
        samples = scrape(client)
        assert value(samples, "faqbot_index_entries") == 0
        assert value(samples, "faqbot_ready") == 0
    finally:
        app.state.engine = engine


def test_query_log_counters_are_read_live(app: FastAPI, client: TestClient) -> None:
    assert client.post("/v1/ask", json={"query": "カスハラの定義"}).status_code == 200
    deadline = time.monotonic() + 10
    while app.state.query_log.counts()["written"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = app.state.query_log.stats
    stats.failed_writes, stats.dropped = 3, 7
    samples = scrape(client)
    assert value(samples, "faqbot_query_log_written_total") == app.state.query_log.counts()["written"] >= 1
    assert value(samples, "faqbot_query_log_write_failures_total") == 3
    assert value(samples, "faqbot_query_log_dropped_total") == 7
    assert ("faqbot_query_log_queued", frozenset()) in samples


def test_decisions_and_reloads_are_counted(client: TestClient) -> None:
    before = scrape(client)
    observe_decision("line", "fallback")
    observe_decision("made-up", "also-made-up")
    observe_reload("live", 12.5)
    after = scrape(client)
    assert value(after, "faqbot_decisions_total", channel="line", decision="fallback") == (
        value(before, "faqbot_decisions_total", channel="line", decision="fallback") + 1
    )
    assert value(after, "faqbot_decisions_total", channel="other", decision="other") >= 1
    assert "made-up" not in label_values(after)
    assert value(after, "faqbot_reloads_total", result="live") == value(before, "faqbot_reloads_total", result="live") + 1
    assert value(after, "faqbot_reload_duration_seconds_sum") == pytest.approx(
        value(before, "faqbot_reload_duration_seconds_sum") + 12.5
    )


def test_many_apps_in_one_process_each_report_their_own(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    apps = [_app(settings, tmp_path, engine if i == 0 else None, name=f"a{i}") for i in range(50)]
    for each in apps:
        install_observability(each)
    try:
        loaded = scrape(TestClient(apps[0]))  # no lifespan: the unloaded ones stay unloaded
        unloaded = scrape(TestClient(apps[1]))
        assert value(loaded, "faqbot_index_entries") == len(engine.corpus.entries)
        assert value(unloaded, "faqbot_index_entries") == 0
    finally:
        for each in apps:
            each.state.query_log.store.close()


def test_installing_twice_changes_nothing(app: FastAPI) -> None:
    install_observability(app)
    with TestClient(app) as client:
        labels = {"route": "/healthz", "method": "GET", "status": "200"}
        before = value(scrape(client), "faqbot_requests_total", **labels)
        response = client.get("/healthz")
        assert len(response.headers.get_list("x-request-id")) == 1
        assert value(scrape(client), "faqbot_requests_total", **labels) == before + 1
    assert sum(1 for r in app.router.routes if getattr(r, "path", None) == "/metrics") == 1


def test_an_exception_counts_as_500_under_its_route() -> None:
    app = FastAPI()

    @app.get("/boom/{thing}")
    async def boom(thing: str) -> None:
        raise RuntimeError("broken")

    install_observability(app)
    client = TestClient(app, raise_server_exceptions=False)
    labels = {"route": "/boom/{thing}", "method": "GET", "status": "500"}
    before = value(scrape(client), "faqbot_requests_total", **labels)
    assert client.get("/boom/x").status_code == 500
    assert value(scrape(client), "faqbot_requests_total", **labels) == before + 1


def test_json_formatter_renders_fields_and_errors() -> None:
    record = logging.LogRecord("bot.x", logging.ERROR, __file__, 1, "窓口 %s", ("閉",), None)
    record.__dict__["fields"] = {"faq_id": "abc", "n": 2}
    try:
        raise ValueError("bad")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "窓口 閉"
    assert line["level"] == "ERROR" and line["logger"] == "bot.x"
    assert line["faq_id"] == "abc" and line["n"] == 2
    assert "ValueError: bad" in line["exc"]


def test_configure_json_logging_makes_root_lines_json(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_json_logging("info")
        logging.getLogger("bot.somewhere").info("hello %d", 5, extra={"fields": {"k": "v"}})
        logging.getLogger("bot.somewhere").debug("not at info")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert [(line["message"], line["k"]) for line in lines] == [("hello 5", "v")]


def test_an_ask_through_the_api_counts_its_decision_per_channel(client: TestClient) -> None:
    before = value(scrape(client), "faqbot_decisions_total", channel="web", decision="answered")
    assert client.post("/v1/ask", json={"query": "カスハラって何ですか", "channel": "web"}).json()["decision"] == "answered"
    after = value(scrape(client), "faqbot_decisions_total", channel="web", decision="answered")
    assert after == before + 1
