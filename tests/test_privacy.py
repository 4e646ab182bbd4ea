"""Personal data masking: what must be masked, what must stay exactly as typed."""

from __future__ import annotations

import dataclasses

import pytest

from bot.privacy import PLACEHOLDERS, MaskKind, Masked, mask

TEL, MAIL, POST, NUM, NAME, ADDR = (
    PLACEHOLDERS[k] for k in ("phone", "email", "postal", "number", "name", "address")
)

MASKED: list[tuple[str, str]] = [
    # Phone numbers in every written form.
    ("03-1234-5678", TEL),
    ("0312345678", TEL),
    ("０９０（１２３４）５６７８", TEL),
    ("+81 90-1234-5678", TEL),
    ("090-1234-5678", TEL),
    ("(03)1234-5678", TEL),
    ("0120-123-456", TEL),
    ("045-123-4567に電話しました", f"{TEL}に電話しました"),
    ("携帯は09012345678です", f"携帯は{TEL}です"),
    ("電話は０３－１２３４－５６７８です", f"電話は{TEL}です"),
    ("090ー1234ー5678に折り返してください", f"{TEL}に折り返してください"),
    ("＋８１ ９０-１２３４-５６７８", TEL),
    ("0466-12-3456（自宅）", f"{TEL}（自宅）"),
    # E-mail addresses, ASCII and full-width.
    ("yamada@example.com", MAIL),
    ("メールはyamada@example.comです", f"メールは{MAIL}です"),
    ("ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ", MAIL),
    ("連絡先：ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ　までお願いします", f"連絡先：{MAIL}　までお願いします"),
    ("taro.yamada+faq@mail.example.co.jp に送ってください", f"{MAIL} に送ってください"),
    # Postal codes.
    ("〒160-0023", POST),
    ("〒1600023", POST),
    ("160-0023", POST),
    ("〒１６０－００２３　東京都新宿区西新宿", f"{POST}　東京都新宿区西新宿"),
    ("郵便番号は1600023です", f"郵便番号は{POST}です"),
    # Individual numbers, card and account numbers.
    ("マイナンバーは123456789012です", f"マイナンバーは{NUM}です"),
    ("1234 5678 9012 3456", NUM),
    ("1234-5678-9012", NUM),
    ("口座番号1234567", f"口座番号{NUM}"),
    ("カード番号は１２３４　５６７８　９０１２　３４５６です", f"カード番号は{NUM}です"),
    ("会員番号12345678を忘れました", f"会員番号{NUM}を忘れました"),
    # Names people introduce themselves with.
    ("山田太郎と申します", f"{NAME}と申します"),
    ("田中です。", f"{NAME}です。"),
    ("鈴木と言います", f"{NAME}と言います"),
    ("私は佐藤です", f"私は{NAME}です"),
    ("山田と申しますが", f"{NAME}と申しますが"),
    ("わたくし、高橋と申します", f"わたくし、{NAME}と申します"),
    ("名前は山田です", f"名前は{NAME}です"),
    ("田中といいます。よろしくお願いします", f"{NAME}といいます。よろしくお願いします"),
    ("担当の田中でございます", f"担当の{NAME}でございます"),
    ("山田　花子です", f"{NAME}です"),
    ("ヤマダと申します", f"{NAME}と申します"),
    ("お名前：山田", f"お名前：{NAME}"),
    # Several kinds in one message.
    ("山田と申します。090-1234-5678まで連絡ください", f"{NAME}と申します。{TEL}まで連絡ください"),
    ("鈴木です。メールはsuzuki@example.jp、電話は03-1234-5678です", f"{NAME}です。メールは{MAIL}、電話は{TEL}です"),
    ("〒160-0023 東京都新宿区の佐藤と申します", f"{POST} 東京都新宿区の{NAME}と申します"),
    ("2024年5月1日に口座1234567へ振り込みました", f"2024年5月1日に口座{NUM}へ振り込みました"),
    ("14:00〜16:00なら0120-123-456に電話できます", f"14:00〜16:00なら{TEL}に電話できます"),
    # Street addresses with block numbers (the prefecture is part of them).
    ("東京都新宿区西新宿2-8-1に住んでいます", f"{ADDR}に住んでいます"),
    ("住所は新宿区西新宿二丁目8番1号です", f"住所は{ADDR}です"),
    ("大阪市北区梅田3-1-1です", f"{ADDR}です"),
    ("〒160-0023 東京都新宿区西新宿2-8-1", f"{POST} {ADDR}"),
]

UNCHANGED: list[str] = [
    "港区の店で3-4人のお客様が待っていました",
    "セミナーは3-4時間ほどですか",
    "2024-05-01",
    "2024/05/01",
    "令和6年5月1日",
    "5営業日以内に返信します",
    "相談は最大5回までですか",
    "14:00〜16:00",
    "9時から17時まで受け付けています",
    "条例第2条第5号",
    "定員は30人です",
    "2025年4月1日施行",
    "第3回セミナーです",
    "1回あたり2時間です",
    "参加費は10,000円です",
    "1,000,000円の損害",
    "回答率は12.5%です",
    "2025",
    "20240501",
    "2024-2025年度の予算",
    "セミナーです",
    "相談です",
    "無料です",
    "担当者です",
    "店長です",
    "このような行為をカスハラと言います。",
    "何と言いますか",
    "セミナーは無料ですか",
]

TABLE = MASKED + [(text, text) for text in UNCHANGED]


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_mask_table(text: str, expected: str) -> None:
    assert mask(text).text == expected


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_masking_masked_text_changes_nothing(text: str, expected: str) -> None:
    again = mask(mask(text).text)
    assert again.text == expected
    assert again.kinds == frozenset()


@pytest.mark.parametrize("text", UNCHANGED)
def test_unchanged_text_reports_no_kinds(text: str) -> None:
    assert mask(text) == Masked(text, frozenset())


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("03-1234-5678", {"phone"}),
        ("ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ", {"email"}),
        ("〒1600023", {"postal"}),
        ("123456789012", {"number"}),
        ("田中です。", {"name"}),
        ("山田と申します。090-1234-5678まで連絡ください", {"name", "phone"}),
        (
            "佐藤と申します。〒160-0023、sato@example.com、口座1234567、03-1234-5678",
            {"name", "postal", "email", "number", "phone"},
        ),
    ],
)
def test_kinds_name_what_was_found(text: str, kinds: set[MaskKind]) -> None:
    assert mask(text).kinds == frozenset(kinds)


def test_a_phone_number_is_not_also_reported_as_a_long_number() -> None:
    result = mask("09012345678")
    assert result == Masked(TEL, frozenset({"phone"}))


def test_digits_inside_an_email_address_stay_part_of_the_address() -> None:
    assert mask("taro1234567@example.com") == Masked(MAIL, frozenset({"email"}))


def test_full_width_text_around_a_mask_keeps_its_characters() -> None:
    text = "ＡＢＣ社の件です。㈱の担当、ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ宛てに１２３４５６７８９０１２を送付"
    assert mask(text).text == f"ＡＢＣ社の件です。㈱の担当、{MAIL}宛てに{NUM}を送付"


def test_placeholders_cover_every_kind() -> None:
    assert set(PLACEHOLDERS) == {"phone", "email", "postal", "number", "name", "address"}
    assert len(set(PLACEHOLDERS.values())) == len(PLACEHOLDERS)


def test_masked_is_frozen() -> None:
    result = mask("田中です")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "田中です"  # type: ignore[misc]
