"""What the chat channels (LINE, Slack) say, apart from the FAQ answers themselves.

Both channels turn a `Reply` into text the same way and answer the same non-questions
(a sticker, an empty message, the service still loading) with the same polite words,
so the wording lives here once.
"""

from __future__ import annotations

import asyncio
import logging

from bot.answer import Reply
from bot.api.observability import observe_decision
from bot.engine import Engine
from bot.querylog import QueryLog, ask_recorded
from bot.ratelimit import RATE_LIMITED_MESSAGE, RateLimiter

log = logging.getLogger(__name__)

GREETING = (
    "友だち追加ありがとうございます。カスタマーハラスメントの防止について、"
    "よくあるご質問からお答えします。ご質問を文章でお送りください。"
)
NOT_TEXT = "恐れ入りますが、スタンプや画像などにはお答えできません。ご質問を文章でお送りください。"
EMPTY_QUERY = "ご質問を文章でお送りください。"
TOO_LONG = "恐れ入りますが、ご質問は{max_chars}文字以内でお送りください。"
NOT_READY = "ただいま準備中です。恐れ入りますが、しばらくしてからもう一度お送りください。"
FAILED = "申し訳ありません。ただいまお答えできませんでした。しばらくしてからもう一度お試しください。"
UNKNOWN_ENTRY = "申し訳ありません。そのご質問は見つかりませんでした。もう一度ご質問を文章でお送りください。"
HOURS_LINE = "受付時間：{hours}"
SUGGESTIONS_HEADER = "近いご質問："
NOTICE_MARK = "※"
URGENT_MARK = "【緊急】"


def clip(text: str, limit: int) -> str:
    """The text cut to the platform's limit, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def refusal(query: str, max_chars: int) -> str | None:
    """A polite reason when the text cannot be asked as it is, else None."""
    stripped = query.strip()
    if not stripped:
        return EMPTY_QUERY
    if len(stripped) > max_chars:
        return TOO_LONG.format(max_chars=max_chars)
    return None


def reply_text(reply: Reply) -> str:
    """The answer, or for a non-answer the message plus the desk's hours when not said yet;
    the request not to send personal data, when there is one, comes last."""
    text = reply.answer
    if reply.route is not None and reply.decision != "urgent":
        hours = reply.route.hours
        if hours and hours not in text:
            text = f"{text}\n{HOURS_LINE.format(hours=hours)}"
    return f"{text}\n\n{NOTICE_MARK}{reply.notice}" if reply.notice else text


async def ask_engine(
    engine: Engine | None,
    query: str,
    *,
    query_log: QueryLog | None,
    channel: str,
    user: str | None = None,
    limiter: RateLimiter | None = None,
) -> Reply | str:
    """Ask the engine off the event loop and log the ask; a polite message instead of a
    Reply when it cannot.

    Embedding is CPU-bound (tens of milliseconds), so it runs in a worker thread and
    the loop stays free to acknowledge other webhooks in time.
    """
    if engine is None:
        return NOT_READY
    problem = refusal(query, engine.settings.max_query_chars)
    if problem is not None:
        return problem
    if limiter is not None and user:
        wait = await asyncio.to_thread(limiter.retry_after, f"{channel}:{user}")
        if wait is not None:
            return RATE_LIMITED_MESSAGE.format(seconds=wait)
    try:
        reply = await asyncio.to_thread(ask_recorded, engine, query_log, query.strip(), channel=channel, user=user)
        observe_decision(channel, reply.decision)
        return reply
    except Exception:  # a channel must always say something, never fail the webhook
        log.exception("answering a chat message failed")
        return FAILED
