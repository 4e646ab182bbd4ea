"""Metrics, request ids and one JSON access line per request.

Request, decision and reload metrics are module-level objects in prometheus_client's
default registry: they are counted once per process, whichever app counts them. What
belongs to one app (its query log's counters, its live engine) is read at scrape time by
a collector in a registry of that app's own, so a reload's new engine shows at once and
building many apps in one process never registers a name twice. `/metrics` serves both.

Every label has a closed set of values: the route template (never the raw path, which
carries ids), the method, the status, the channel, the decision. Nothing a person typed
reaches a label or a log line.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, get_args

from fastapi import FastAPI, Request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.answer import Decision
from bot.api.protection import client_address
from bot.api.schemas import Channel
from bot.desk import TOKYO

__all__ = [
    "ACCESS_LOGGER",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "configure_json_logging",
    "current_request_id",
    "install_observability",
    "observe_decision",
    "observe_reload",
]

ACCESS_LOGGER = "bot.access"
OTHER = "other"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CHANNELS: tuple[str, ...] = get_args(Channel)
_DECISIONS: tuple[str, ...] = get_args(Decision)
# A cached answer is a few ms, an embedding tens, a cold path or a slow proxy seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RELOAD_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)

REQUESTS = Counter("faqbot_requests", "HTTP requests answered, by route template.", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "faqbot_request_duration_seconds", "Time from request to the end of the response body.", ["route"], buckets=DURATION_BUCKETS
)
DECISIONS = Counter("faqbot_decisions", "Replies by channel and decision kind.", ["channel", "decision"])
RELOADS = Counter("faqbot_reloads", "Finished live reloads, by result.", ["result"])
RELOAD_SECONDS = Histogram("faqbot_reload_duration_seconds", "Time a live reload took to build.", buckets=RELOAD_BUCKETS)

for _channel in _CHANNELS:
    for _decision in _DECISIONS:
        DECISIONS.labels(_channel, _decision)  # zeros, so rate() works before the first reply

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("faqbot_request_id", default=None)
access_log = logging.getLogger(ACCESS_LOGGER)


def current_request_id() -> str | None:
    """The id of the request being served, for log lines and error bodies outside the middleware."""
    return _request_id.get()


def observe_decision(channel: str, decision: str) -> None:
    """Count one reply. Values outside the known channels and decisions count as `other`,
    so a new caller cannot grow the label set by accident."""
    DECISIONS.labels(channel if channel in _CHANNELS else OTHER, decision if decision in _DECISIONS else OTHER).inc()


def observe_reload(result: str, seconds: float) -> None:
    """Count one finished reload; its signature is `Reloader(on_finish=...)`'s."""
    RELOADS.labels(result).inc()
    RELOAD_SECONDS.observe(seconds)


# ---- logging -----------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so a log shipper needs no parsing rules: ts (Asia/Tokyo),
    level, logger, message, the request id when inside a request, and the `fields` dict a
    caller passes as `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, TOKYO).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id is not None:
            line["request_id"] = request_id
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_json_logging(level: str) -> None:
    """Send every logger's records to stderr as JSON lines (replacing the root's handlers),
    so access lines and application lines reach the shipper in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


# ---- the middleware ----------------------------------------------------------------------


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_REQUEST_ID.fullmatch(text) else uuid.uuid4().hex
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else OTHER


def _client(scope: Scope) -> str:
    app = scope.get("app")
    trusted = getattr(getattr(app, "state", None), "trusted_proxies", None)
    if trusted:
        return client_address(Request(scope), trusted)
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ObservabilityMiddleware:
    """Request id, metrics and the access line for each HTTP request.

    A pure ASGI middleware rather than BaseHTTPMiddleware: that one runs the app in a
    separate task and buffers streamed bodies, which costs latency on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = _request_id.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - started)
            _request_id.reset(token)

    @staticmethod
    def _record(scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route = _route_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else OTHER
        REQUESTS.labels(route, method, str(status)).inc()
        REQUEST_SECONDS.labels(route).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 2)
            fields = {
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "client": _client(scope),
            }
            access_log.info("%s %s %d %.2fms", method, route, status, duration_ms, extra={"fields": fields})


# ---- the app's own figures ---------------------------------------------------------------


class AppCollector(Collector):
    """Figures read from one app at scrape time: its query log and its live engine, which a
    reload may have swapped since the last scrape."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        state = self._app.state
        query_log = getattr(state, "query_log", None)
        if query_log is not None:
            counts = query_log.counts()
            for name, key, text in (
                ("faqbot_query_log_written", "written", "Query log records written to the store."),
                ("faqbot_query_log_write_failures", "failed_writes", "Failed query log batch writes (retried)."),
                ("faqbot_query_log_dropped", "dropped", "Query log records dropped because the queue was full."),
                ("faqbot_query_log_purged", "purged", "Query log rows deleted past the retention period."),
            ):
                yield CounterMetricFamily(name, text, value=counts.get(key, 0))
            yield GaugeMetricFamily("faqbot_query_log_queued", "Query log records waiting for the writer.", value=counts.get("queued", 0))
        engine = getattr(state, "engine", None)
        yield GaugeMetricFamily("faqbot_ready", "1 once the engine is loaded and answering.", value=0 if engine is None else 1)
        yield GaugeMetricFamily(
            "faqbot_index_entries", "FAQ entries in the live index.", value=0 if engine is None else len(engine.corpus.entries)
        )
        info = GaugeMetricFamily(
            "faqbot_build_info", "Always 1: the version, model and index build time serving.", labels=["version", "model", "index_built_at"]
        )
        if engine is not None:
            info.add_metric([str(self._app.version), engine.embedder.model_id, engine.index_built_at or ""], 1)
        else:
            info.add_metric([str(self._app.version), "", ""], 1)
        yield info


class _DefaultRegistry(Collector):
    """The process-wide registry as one collector of the app's registry, so one scrape
    returns both through prometheus_client's own exposition."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class _MetricsEndpoint:
    """prometheus_client's ASGI app as a class instance: Starlette treats a plain async
    function given to Route as a request handler, an object as an ASGI app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._app = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def install_observability(app: FastAPI) -> None:
    """Add the middleware and `GET /metrics` to an app that has not started yet (Starlette
    refuses middleware after that). The middleware goes outermost, so its timing and
    status include every other middleware. Calling it twice changes nothing."""
    if getattr(app.state, "observability", None) is not None:
        return
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DefaultRegistry())
    registry.register(AppCollector(app))
    app.state.observability = registry
    app.add_middleware(ObservabilityMiddleware)
    # First, so no catch-all route a channel might add later can shadow it.
    app.router.routes.insert(0, Route("/metrics", _MetricsEndpoint(registry), methods=["GET"], include_in_schema=False))
