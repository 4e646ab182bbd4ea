"""Limits against abuse on the HTTP edge: body size, request rate per client, browser headers.

A client is the peer address, or the address a trusted proxy says it forwarded for
(bot.ratelimit counts the requests).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api.errors import ApiError
from bot.ratelimit import RATE_LIMITED_MESSAGE, RateLimiter

# The widget's page may load only its own script, stylesheet and API; the inline styles
# are the demo page's and the staff report's own.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# FastAPI's interactive docs load their own script from a CDN; they keep FastAPI's defaults.
_DOCS_PATHS = ("/docs", "/redoc")


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "fields": []}}, ensure_ascii=False).encode()


class BodySizeLimit:
    """413 for a request body over `max_bytes`, whether it says its length or streams it.

    A body without a length is read here first (at most `max_bytes` + one chunk) and
    handed on whole, so the app never sees a body it would have to refuse halfway."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = _error_body("payload_too_large", f"the request body is larger than {self.max_bytes} bytes")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """nosniff and no referrer on every response; the content security policy on HTML."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {name.lower() for name, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and not path.startswith(_DOCS_PATHS):
                    extra.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                message["headers"] = headers + [(n, v) for n, v in extra if n not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


def client_address(request: Request, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The peer, or when the peer is a trusted proxy, the last X-Forwarded-For hop that is
    not one: a client can put anything at the start of that header, not at its end."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _inside(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _inside(hop, trusted):
            return hop
    return peer


def _inside(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def rate_limited(retry_after: int) -> ApiError:
    message = RATE_LIMITED_MESSAGE.format(seconds=retry_after)
    return ApiError(429, "rate_limited", message, headers={"Retry-After": str(retry_after)})


def limit_client(request: Request) -> None:
    """A route dependency: 429 with Retry-After once this client is over the limit."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.items:
        return
    key = "ip:" + client_address(request, request.app.state.trusted_proxies)
    wait = limiter.retry_after(key)
    if wait is not None:
        raise rate_limited(wait)

