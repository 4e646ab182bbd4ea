import datetime as dt

from bot.corpus import Contacts, Hours
from bot.desk import TOKYO, Desk

WITH_HOURS = Contacts(form_url="https://example.test/form", phone="03-0000-0000", hours=Hours(opens=dt.time(9), closes=dt.time(17)))


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def test_weekday_hours_in_tokyo() -> None:
    desk = Desk(WITH_HOURS)
    assert desk.open_now(at(2026, 11, 27, 10, 0)) is True  # Friday
    assert desk.open_now(at(2026, 11, 27, 17, 0)) is False
    # 00:30 UTC is 09:30 in Tokyo
    assert desk.open_now(dt.datetime(2026, 11, 27, 0, 30, tzinfo=dt.UTC)) is True


def test_weekends_and_public_holidays_are_closed() -> None:
    desk = Desk(WITH_HOURS)
    assert desk.open_now(at(2026, 11, 28, 10, 0)) is False  # Saturday
    assert desk.open_now(at(2026, 11, 23, 10, 0)) is False  # 勤労感謝の日 (Monday)
    assert desk.open_now(at(2026, 5, 6, 10, 0)) is False  # 振替休日
    assert desk.open_now(at(2026, 11, 24, 10, 0)) is True


def test_route_prefers_phone_when_open_and_form_when_closed() -> None:
    desk = Desk(WITH_HOURS)
    open_route = desk.route(at(2026, 11, 27, 10, 0))
    assert open_route.kind == "phone" and "03-0000-0000" in open_route.message
    closed = desk.route(at(2026, 11, 28, 10, 0))
    assert closed.kind == "form" and "受付時間外" in closed.message and "https://example.test/form" in closed.message
    assert closed.hours == "平日 09:00〜17:00（土日・祝日は休み）"


def test_unset_contacts_still_route_sensibly() -> None:
    desk = Desk(Contacts())
    route = desk.route(at(2026, 11, 27, 10, 0))
    assert route.open_now is None and route.phone is None and route.form_url is None
    assert route.message == "総合相談窓口へのお電話、または相談フォームからご相談ください。"
    assert desk.route(at(2026, 11, 28, 10, 0)).open_now is False
