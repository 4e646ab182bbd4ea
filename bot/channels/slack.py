"""Slack channel: `POST /slack/events` for events, interactivity and the `/faq` command.

Built on the official Bolt for Python (`AsyncApp` and its FastAPI adapter), which checks
Slack's request signature and timestamp (401 otherwise), answers url_verification,
and, with process_before_response off, acknowledges within Slack's 3 seconds before
the listener does the slow part (embedding, in a worker thread; the Web API call).
Slack retries an event it thinks was lost; its `event_id` is answered only once.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from slack_bolt import BoltResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import replies
from bot.channels.dedupe import MemorySeenIds, SeenIds
from bot.channels.slack_blocks import (
    SUGGESTION_ACTION,
    Block,
    ask_of_block,
    entry_blocks,
    notice_blocks,
    reply_blocks,
)
from bot.config import Settings
from bot.engine import Engine
from bot.querylog import QueryLog

log = logging.getLogger(__name__)

COMMAND = "/faq"
SLASH_USAGE = "「/faq ご質問」の形でお送りください。例：/faq カスハラって何ですか"
ENGINE_KEY = "faq_engine"  # where each request's engine is put in Bolt's context
QUERY_LOG_KEY = "faq_query_log"
LIMITER_KEY = "faq_rate_limiter"
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def query_of(text: str) -> str:
    """The question in a Slack message: mentions removed, Slack's &amp; escapes undone."""
    return html.unescape(_MENTION.sub(" ", text)).strip()


async def answer(context: AsyncBoltContext, text: str, user: str | None) -> tuple[str, list[Block]]:
    """(text, blocks) answering the text, or a polite notice when it cannot be answered."""
    engine: Engine | None = context.get(ENGINE_KEY)
    query_log: QueryLog | None = context.get(QUERY_LOG_KEY)
    result = await replies.ask_engine(
        engine, query_of(text), query_log=query_log, channel="slack", user=user, limiter=context.get(LIMITER_KEY)
    )
    return notice_blocks(result) if isinstance(result, str) else reply_blocks(result)


async def post_in_thread(client: AsyncWebClient, event: dict[str, Any], context: AsyncBoltContext) -> None:
    text, blocks = await answer(context, event.get("text") or "", event.get("user"))
    await client.chat_postMessage(
        channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"], text=text, blocks=blocks
    )


def build_bolt_app(settings: Settings, seen: SeenIds) -> AsyncApp:
    """The Bolt app with its listeners; the Web API client points at FAQBOT_SLACK_API_BASE_URL."""
    if settings.slack_signing_secret is None or settings.slack_bot_token is None:
        raise ValueError("the Slack channel needs FAQBOT_SLACK_SIGNING_SECRET and FAQBOT_SLACK_BOT_TOKEN")
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_base_url)
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        process_before_response=False,  # ack first, then answer
        logger=_bolt_logger(),
    )

    @app.middleware
    async def answer_each_event_once(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """Acknowledge a retried event (X-Slack-Retry-Num) without answering it again."""
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and isinstance(event_id, str) and not seen.first_time(event_id):
            log.info("Slack event %s already answered (retry)", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await post_in_thread(client, event, context)

    @app.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        # Only a person's own direct message: not edits, joins, bots (ourselves included).
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        await post_in_thread(client, event, context)

    @app.command(COMMAND)
    async def on_command(
        ack: Callable[..., Awaitable[None]], command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        question = command.get("text") or ""
        text, blocks = notice_blocks(SLASH_USAGE) if not question.strip() else await answer(context, question, command.get("user_id"))
        await respond(text=text, blocks=blocks, response_type="ephemeral")

    @app.action(re.compile(rf"^{SUGGESTION_ACTION}"))
    async def on_suggestion(
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        engine: Engine | None = context.get(ENGINE_KEY)
        if engine is None:
            text, blocks = notice_blocks(replies.NOT_READY)
        else:
            faq_id = str(action.get("value"))
            try:
                text, blocks = entry_blocks(engine.corpus.entry(faq_id))
            except KeyError:  # an old button after the corpus changed
                text, blocks = notice_blocks(replies.UNKNOWN_ENTRY)
            else:
                ask_id = ask_of_block(action.get("block_id"))
                query_log: QueryLog | None = context.get(QUERY_LOG_KEY)
                if ask_id and query_log is not None:
                    query_log.record_pick(ask_id, faq_id, "slack")
        message = body.get("message")
        container = body.get("container") or {}
        if message is None or container.get("is_ephemeral"):
            # Buttons on an ephemeral /faq answer: only the response_url reaches that person.
            await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            return
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
        await client.chat_postMessage(
            channel=channel, thread_ts=message.get("thread_ts") or message["ts"], text=text, blocks=blocks
        )

    return app


def router(settings: Settings, seen: SeenIds | None = None) -> APIRouter:
    """The Slack route; `seen` defaults to an in-memory set of event ids (one process)."""
    handler = AsyncSlackRequestHandler(build_bolt_app(settings, seen if seen is not None else MemorySeenIds()))
    api_router = APIRouter(tags=["channels"])

    @api_router.post("/slack/events", responses={401: {"description": "missing, stale or wrong Slack signature"}})
    async def slack_events(request: Request) -> Response:
        """Receive Slack events, button clicks and the /faq command (signed by Slack)."""
        state = request.app.state
        context = {ENGINE_KEY: state.engine, QUERY_LOG_KEY: state.query_log, LIMITER_KEY: state.rate_limiter}
        return await handler.handle(request, context)

    return api_router


def _bolt_logger() -> logging.Logger:
    """Bolt logs the body of a rejected request (a person's message) at INFO: keep it out."""
    logger = logging.getLogger("bot.channels.slack.bolt")
    logger.setLevel(logging.WARNING)
    return logger
