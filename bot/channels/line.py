"""LINE channel: `POST /line/webhook`, answered through the Messaging API's reply endpoint.

Works with the official `line-bot-sdk` (v3). LINE signs the raw body with the channel
secret; anything unsigned or forged is refused before it is parsed. Each event is
answered inside the request (reply tokens expire quickly), the CPU-bound answer in a
worker thread, and LINE gets its 200 once the replies are sent. LINE's own failures
are logged and never turned into an error for LINE, which would only redeliver.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    Message,
    MessagingApi,
    PostbackAction,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhook import SignatureValidator
from linebot.v3.webhooks import Event, FollowEvent, MessageEvent, PostbackEvent, TextMessageContent

from bot.answer import Reply, Suggestion
from bot.channels import replies
from bot.channels.dedupe import MemorySeenIds, SeenIds
from bot.config import Settings
from bot.engine import Engine
from bot.querylog import QueryLog
from bot.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# Limits of the Messaging API (https://developers.line.biz/en/reference/messaging-api/).
TEXT_LIMIT = 5000
QUICK_REPLY_ITEMS = 13
LABEL_LIMIT = 20
ACTION_TEXT_LIMIT = 300
REPLY_TIMEOUT_SECONDS = 10.0


POSTBACK_DATA_LIMIT = 300
PICK = "pick"


def pick_data(ask_id: str, faq_id: str) -> str:
    """The postback a suggestion button sends: which ask offered it and which entry it is."""
    return urlencode({"action": PICK, "ask": ask_id, "faq": faq_id})[:POSTBACK_DATA_LIMIT]


def parse_pick(data: str) -> tuple[str, str] | None:
    """(ask_id, faq_id) of a suggestion button's postback, else None."""
    fields = {k: v[0] for k, v in parse_qs(data).items()}
    if fields.get("action") != PICK or not fields.get("ask") or not fields.get("faq"):
        return None
    return fields["ask"], fields["faq"]


def quick_reply(ask_id: str, suggestions: list[Suggestion]) -> QuickReply | None:
    """Suggestion buttons; tapping one shows that entry's question as the person's message
    and sends a postback, so the pick is tied to the ask that offered it."""
    items = [
        QuickReplyItem(
            action=PostbackAction(
                label=replies.clip(s.question, LABEL_LIMIT),
                data=pick_data(ask_id, s.id),
                display_text=replies.clip(s.question, ACTION_TEXT_LIMIT),
            )
        )
        for s in suggestions[:QUICK_REPLY_ITEMS]
    ]
    return QuickReply(items=items) if items else None


def reply_messages(reply: Reply) -> list[Message]:
    """One text message for a Reply; suggestions as quick replies.

    Button labels are cut to 20 characters, so a non-answer also lists the suggested
    questions in full in the text.
    """
    text = replies.reply_text(reply)
    if reply.decision == "urgent":
        return [TextMessage(text=replies.clip(f"{replies.URGENT_MARK}{text}", TEXT_LIMIT))]
    if not reply.answered and reply.suggestions:
        listed = "\n".join(f"・{s.question}" for s in reply.suggestions)
        text = f"{text}\n\n{replies.SUGGESTIONS_HEADER}\n{listed}"
    return [TextMessage(text=replies.clip(text, TEXT_LIMIT), quick_reply=quick_reply(reply.ask_id, reply.suggestions))]


def text_message(text: str) -> list[Message]:
    return [TextMessage(text=replies.clip(text, TEXT_LIMIT))]


def message_text(event: Event | None, raw_event: dict[str, Any]) -> str | None:
    """The text of a text message event; None for stickers, images and the like."""
    if isinstance(event, MessageEvent):
        return event.message.text if isinstance(event.message, TextMessageContent) else None
    message = raw_event.get("message")
    text = message.get("text") if isinstance(message, dict) and message.get("type") == "text" else None
    return text if isinstance(text, str) else None


class LineChannel:
    """Verifies webhooks and replies to their events, each event id at most once."""

    def __init__(self, settings: Settings, seen: SeenIds) -> None:
        if settings.line_channel_secret is None or settings.line_channel_access_token is None:
            raise ValueError("the LINE channel needs FAQBOT_LINE_CHANNEL_SECRET and FAQBOT_LINE_CHANNEL_ACCESS_TOKEN")
        self.validator = SignatureValidator(settings.line_channel_secret.get_secret_value())
        configuration = Configuration(
            host=settings.line_api_base_url.rstrip("/"),
            access_token=settings.line_channel_access_token.get_secret_value(),
        )
        self.api = MessagingApi(ApiClient(configuration))
        self.seen = seen

    def verify(self, body: bytes, signature: str | None) -> str | None:
        """The body as text when LINE's signature matches, else None."""
        if not signature:
            return None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text if self.validator.validate(text, signature) else None

    async def handle(
        self,
        raw_event: dict[str, Any],
        engine: Engine | None,
        query_log: QueryLog | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        """Answer one event; never raises (one bad event must not cost the others their reply).

        The envelope (mode, id, reply token) is read from the raw event so that even an
        event type this SDK version does not know is deduplicated and, if it is a
        message, answered politely.
        """
        event_id = raw_event.get("webhookEventId")
        try:
            if raw_event.get("mode") == "standby":
                return  # another channel owns the conversation (chat mode / module channel)
            if isinstance(event_id, str) and not self.seen.first_time(event_id):
                log.info("LINE event %s already answered (redelivery)", event_id)
                return
            messages = await self.messages_for(raw_event, engine, query_log, limiter)
            reply_token = raw_event.get("replyToken")
            if messages and isinstance(reply_token, str):
                await self.reply(reply_token, messages)
        except Exception:
            log.exception("LINE event %s could not be answered", event_id)

    async def messages_for(
        self,
        raw_event: dict[str, Any],
        engine: Engine | None,
        query_log: QueryLog | None = None,
        limiter: RateLimiter | None = None,
    ) -> list[Message] | None:
        kind = raw_event.get("type")
        try:
            event: Event | None = Event.from_dict(raw_event)
        except Exception:  # noqa: BLE001 (an event or message type newer than this SDK: use the documented shape)
            log.info("LINE event of type %r not understood by the SDK", kind)
            event = None
        if isinstance(event, MessageEvent) or (event is None and kind == "message"):
            text = message_text(event, raw_event)
            if text is None:
                return text_message(replies.NOT_TEXT)
            user = (raw_event.get("source") or {}).get("userId")
            result = await replies.ask_engine(
                engine, text, query_log=query_log, channel="line", user=user, limiter=limiter
            )
            return text_message(result) if isinstance(result, str) else reply_messages(result)
        if isinstance(event, PostbackEvent):
            return self.picked(parse_pick(event.postback.data), engine, query_log)
        if isinstance(event, FollowEvent) or (event is None and kind == "follow"):
            return text_message(replies.GREETING)
        return None  # unfollow, join, other postbacks, …: nothing to say

    def picked(
        self, pick: tuple[str, str] | None, engine: Engine | None, query_log: QueryLog | None
    ) -> list[Message] | None:
        """The entry a person picked from the suggestions, the pick recorded against its ask."""
        if pick is None:
            return None
        if engine is None:
            return text_message(replies.NOT_READY)
        ask_id, faq_id = pick
        try:
            entry = engine.corpus.entry(faq_id)
        except KeyError:  # an old button after the corpus changed
            return text_message(replies.UNKNOWN_ENTRY)
        if query_log is not None:
            query_log.record_pick(ask_id, faq_id, "line")
        return text_message(entry.answer)

    async def reply(self, reply_token: str, messages: list[Message]) -> None:
        request = ReplyMessageRequest(reply_token=reply_token, messages=messages)
        try:
            await asyncio.to_thread(self.api.reply_message, request, _request_timeout=REPLY_TIMEOUT_SECONDS)
        except ApiException as exc:  # token expired or already used, bad message, …
            log.error("LINE reply API answered %s: %s", exc.status, exc.body)
        except Exception as exc:  # noqa: BLE001 (LINE unreachable: log it, LINE must still get its 200)
            log.error("LINE reply API failed: %s", exc)


def _bad_request(code: str, message: str) -> JSONResponse:
    # Same body shape as bot.api.errors (not imported: bot.api imports the channels).
    return JSONResponse(status_code=400, content={"error": {"code": code, "message": message, "fields": []}})


def router(settings: Settings, seen: SeenIds | None = None) -> APIRouter:
    """The LINE webhook route; `seen` defaults to an in-memory set (one process)."""
    channel = LineChannel(settings, seen if seen is not None else MemorySeenIds())
    api_router = APIRouter(tags=["channels"])

    @api_router.post("/line/webhook", responses={400: {"description": "missing or wrong signature, or not a LINE body"}})
    async def line_webhook(request: Request) -> JSONResponse:
        """Receive LINE webhook events (signed with the channel secret) and reply to text messages."""
        text = channel.verify(await request.body(), request.headers.get("x-line-signature"))
        if text is None:
            log.warning("LINE webhook refused: missing or invalid x-line-signature")
            return _bad_request("invalid_signature", "x-line-signature is missing or does not match the body")
        try:
            events = json.loads(text)["events"]
            if not isinstance(events, list):
                raise TypeError("events is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            return _bad_request("invalid_request", f"not a LINE webhook body: {exc}")
        engine: Engine | None = request.app.state.engine
        state = request.app.state
        await asyncio.gather(
            *(channel.handle(e, engine, state.query_log, state.rate_limiter) for e in events if isinstance(e, dict))
        )
        return JSONResponse({})

    return api_router
