"""Block Kit for Slack answers: the answer, its category and confidence, suggestion buttons.

Kept apart from the Bolt wiring so the layout can be read and tested on its own.
"""

from __future__ import annotations

from typing import Any

from bot.answer import Reply, Suggestion
from bot.channels import replies
from bot.corpus import Entry

Block = dict[str, Any]

SUGGESTION_ACTION = "faq_suggestion"  # action_id prefix; each button gets a unique suffix
SUGGESTIONS_LABEL = "こちらのご質問もご覧ください："
AMBIGUOUS_LABEL = "近いご質問をお選びください："
# Limits of Block Kit (https://api.slack.com/reference/block-kit).
SECTION_TEXT_LIMIT = 3000
BUTTON_TEXT_LIMIT = 75
BUTTONS_PER_BLOCK = 25
MESSAGE_TEXT_LIMIT = 3000  # the notification text; Slack allows more, people read less


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sections(text: str) -> list[Block]:
    escaped = escape(text)
    chunks = [escaped[i : i + SECTION_TEXT_LIMIT] for i in range(0, len(escaped), SECTION_TEXT_LIMIT)] or [""]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in chunks]


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(text)}]}


ASK_BLOCK_PREFIX = "ask:"  # the suggestion buttons' block_id names the ask that offered them


def ask_of_block(block_id: object) -> str | None:
    """The ask_id a suggestion button's block was made for, else None (older buttons)."""
    if isinstance(block_id, str) and block_id.startswith(ASK_BLOCK_PREFIX):
        return block_id[len(ASK_BLOCK_PREFIX) :] or None
    return None


def _buttons(label: str, suggestions: list[Suggestion], ask_id: str) -> list[Block]:
    if not suggestions:
        return []
    buttons = [
        {
            "type": "button",
            "action_id": f"{SUGGESTION_ACTION}_{i}",  # action_ids must be unique within a block
            "text": {"type": "plain_text", "text": replies.clip(s.question, BUTTON_TEXT_LIMIT)},
            "value": s.id,
        }
        for i, s in enumerate(suggestions[:BUTTONS_PER_BLOCK])
    ]
    return [_context(label), {"type": "actions", "block_id": f"{ASK_BLOCK_PREFIX}{ask_id}", "elements": buttons}]


def _meta(category: str | None, confidence: float | None) -> str:
    parts = []
    if category:
        parts.append(f"カテゴリ：{category}")
    if confidence is not None:
        parts.append(f"確信度：{confidence:.0%}")
    return "　｜　".join(parts)


def reply_blocks(reply: Reply) -> tuple[str, list[Block]]:
    """(notification text, blocks) for an answer, a choice of suggestions or the desk's route."""
    text = replies.reply_text(reply)
    if reply.decision == "urgent":
        first, _, rest = text.partition("\n")
        urgent = [{"type": "section", "text": {"type": "mrkdwn", "text": f":rotating_light: *{escape(first)}*"}}]
        return replies.clip(f"{replies.URGENT_MARK}{text}", MESSAGE_TEXT_LIMIT), urgent + _sections(rest)
    if reply.decision == "smalltalk":
        return replies.clip(text, MESSAGE_TEXT_LIMIT), _sections(text)
    blocks: list[Block] = []
    if reply.faq is not None:
        blocks.append(_context(f"Q. {reply.faq.question}"))
    blocks.extend(_sections(text))
    blocks.append(_context(_meta(reply.faq.category if reply.faq else None, reply.confidence)))
    blocks.extend(_buttons(SUGGESTIONS_LABEL if reply.answered else AMBIGUOUS_LABEL, reply.suggestions, reply.ask_id))
    return replies.clip(text, MESSAGE_TEXT_LIMIT), blocks


def entry_blocks(entry: Entry) -> tuple[str, list[Block]]:
    """(notification text, blocks) for an entry the person picked from the suggestions."""
    blocks = [_context(f"Q. {entry.question}"), *_sections(entry.answer), _context(_meta(entry.category, None))]
    return replies.clip(entry.answer, MESSAGE_TEXT_LIMIT), blocks


def notice_blocks(message: str) -> tuple[str, list[Block]]:
    """(text, blocks) for a short notice such as "still loading"."""
    return message, _sections(message)
