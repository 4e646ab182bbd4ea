"""The consultation desk: contacts, opening hours in Asia/Tokyo, and where to route people.

Public holidays come from the `holidays` package (Japan), so substitute and special
holidays are right without a hand-kept list.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel

from bot.corpus import Contacts

TOKYO = ZoneInfo("Asia/Tokyo")
DESK_NAME = "総合相談窓口"


class Route(BaseModel):
    """Where a person goes when the bot does not answer."""

    kind: Literal["phone", "form", "emergency"]
    message: str
    form_url: str | None
    phone: str | None
    hours: str
    open_now: bool | None


class Desk:
    """Answers "is the desk open?" and builds the fallback route from the contacts."""

    def __init__(self, contacts: Contacts) -> None:
        self.contacts = contacts
        self._holidays = holidays.country_holidays("JP", language="ja")

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def open_now(self, now: dt.datetime | None = None) -> bool | None:
        """True/False when known; None on a business day while the hours are unset."""
        now = (now or dt.datetime.now(TOKYO)).astimezone(TOKYO)
        if not self.is_business_day(now.date()):
            return False
        opens, closes = self.contacts.hours.opens, self.contacts.hours.closes
        if opens is None or closes is None:
            return None
        return opens <= now.time().replace(tzinfo=None) < closes

    def hours_text(self) -> str:
        opens, closes = self.contacts.hours.opens, self.contacts.hours.closes
        if opens is None or closes is None:
            return "平日のみ（土日・祝日は休み）"
        return f"平日 {opens:%H:%M}〜{closes:%H:%M}（土日・祝日は休み）"

    def route(self, now: dt.datetime | None = None) -> Route:
        """Phone while the desk may be open, the web form otherwise."""
        is_open = self.open_now(now)
        phone, form = self.contacts.phone, self.contacts.form_url
        kind: Literal["phone", "form", "emergency"] = "form" if is_open is False or (form and not phone) else "phone"
        phone_text = f"{DESK_NAME}（{phone}）" if phone else DESK_NAME
        form_text = f"相談フォーム（{form}）" if form else "相談フォーム"
        if is_open is False:
            message = (
                f"ただいま{DESK_NAME}は受付時間外です。{form_text}からご相談いただけます。"
                f"お電話の受付は{self.hours_text()}です。"
            )
        else:
            message = f"{phone_text}へのお電話、または{form_text}からご相談ください。"
        return Route(
            kind=kind, message=message, form_url=form, phone=phone, hours=self.hours_text(), open_now=is_open
        )
