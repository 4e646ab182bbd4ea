"""Masking of personal data in what people type, before it is stored, logged or reported.

People writing to a consultation desk often add their phone number, e-mail address,
postal code, account or individual number, or introduce themselves by name. None of
that is needed to answer a question, and keeping it would turn the query log and the
staff reports into a register of personal data. `mask` replaces each such span with a
placeholder naming its kind, so that a log still reads naturally ("〔氏名〕と申します。
〔電話番号〕まで連絡ください") and a report can count how often people share such data.

Phone numbers are found by `phonenumbers`, whose Japanese metadata knows every number
plan (mobile, landline with any area code length, 0120/0800 freephone, +81); the other
kinds are matched on an NFKC copy of the text so full-width input is caught too, with
every span mapped back onto the original so nothing outside a mask changes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import phonenumbers

from bot.text import TAGGER_LOCK, tagger

MaskKind = Literal["phone", "email", "postal", "number", "name", "address"]


@dataclass(frozen=True)
class Masked:
    """The masked text and the kinds of personal data that were found in it.

    `kinds` lets callers count or flag messages that carried personal data without
    ever keeping the data itself.
    """

    text: str
    kinds: frozenset[MaskKind]


PLACEHOLDERS: dict[MaskKind, str] = {
    "phone": "〔電話番号〕",
    "email": "〔メール〕",
    "postal": "〔郵便番号〕",
    "number": "〔番号〕",
    "name": "〔氏名〕",
    "address": "〔住所〕",
}

# VALID rejects dates such as 2024-05-01 and bare digit runs that POSSIBLE would take.
_PHONE_LENIENCY = phonenumbers.Leniency.VALID
# Japanese phone numbers have at least ten digits (0120-123-456, 03-1234-5678).
_MIN_PHONE_DIGITS = 10
_MIN_NUMBER_DIGITS = 7

# Dash-like characters people type between digit groups; NFKC leaves most of them alone.
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−﹣"})
# The long vowel mark is a dash only between digits (090ー1234ー5678), never in セミナー.
_LONG_MARK_DASH = re.compile(r"(?<=[0-9])[ーｰ](?=[0-9])")
_DIGIT = re.compile(r"[0-9]")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_POSTAL = re.compile(
    r"(?:〒\s?(?P<marked>[0-9]{3}-?[0-9]{4})"
    r"|(?<=郵便番号)[はがを]?[:\s]?(?P<cued>[0-9]{3}-?[0-9]{4})"
    r"|(?<![0-9.,\-])(?P<bare>[0-9]{3}-[0-9]{4}))"
    r"(?![0-9]|[.,\-][0-9])"
)
# A street address: a city, ward, town or village, then block numbers (西新宿2-8-1,
# 新宿区西新宿二丁目8番1号); the prefecture before it is part of it.
_ADDRESS = re.compile(
    r"(?:東京都|北海道|(?:京都|大阪)府|[\u4e00-\u9fff]{2,3}県)?"
    r"[\u4e00-\u9fff\u30a1-\u30fa]{1,8}?[市区町村郡][\u4e00-\u9fff\u30a1-\u30faヶ]{0,12}?"
    r"(?:[0-9]+|[一二三四五六七八九十]+)(?:丁目|-)[0-9]+(?:(?:番地?|-)[0-9]+)?(?:号)?"
)
_DIGIT_RUN = re.compile(r"(?<![0-9])(?<![0-9][.,])[0-9]+(?:[ \-]?[0-9]+)*(?![0-9]|[.,][0-9])")
# A run directly followed by a counter or unit is a quantity, not an identifier.
_UNIT_AFTER = re.compile(r"\s?(?:[円年月日時分秒人回件個歳%％万億兆倍度週]|ヶ月|か月|カ月|営業日)")
_CURRENCY_BEFORE = frozenset("¥￥$€£")
_DATE_SHAPE = re.compile(r"(?:19|20)[0-9]{2}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12][0-9]|3[01])")
_COMPACT_DATE = re.compile(r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])")
_YEAR_RANGE = re.compile(r"(?:19|20)[0-9]{2}-(?:19|20)[0-9]{2}")

# Texts without any of these cannot hold a self-introduction, so the tagger is skipped.
_NAME_CUE = re.compile(r"です|でござ|と申|と言|といい|と名乗|名前|氏名")
_INTRO_VERBS = frozenset({"申す", "言う", "名乗る", "申し上げる"})
_NAME_LABELS = frozenset({"名前", "氏名", "お名前"})
_NAME_SUFFIXES = frozenset({"さん", "様", "さま", "氏", "君", "くん", "ちゃん"})
_NAME_CHARS = r"\u3005\u3006\u30a1-\u30fa\u30fc\u30fb\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaffヵヶ"
# An unknown name is still recognisable as the word right before a humble self-introduction.
_INTRO_FALLBACK = re.compile(
    rf"(?<![{_NAME_CHARS}])(?P<name>[{_NAME_CHARS}]{{1,10}})\s?"
    r"(?P<verb>と(?:申し|申す|言い|言う|いい|いう|名乗))"
)
# "と言います" also defines words (「これをカスハラと言います」); only trust it at a clause start.
_PLAIN_SAY_CONTEXT = re.compile(r"(?:^|[\s、，,。．！？!?]|(?:私|わたし|わたくし|僕|ぼく|俺|名前|氏名)[はがも]?)$")

def mask(text: str) -> Masked:
    """Replace each span of personal data with the placeholder of its kind.

    Overlaps are settled by specificity: an e-mail address may contain a digit run and a
    phone number looks like a long number, so the more specific kind claims a span first.
    Masked text contains no digits, '@' or names, so masking it again changes nothing.
    """
    spans: list[tuple[int, int, MaskKind]] = []
    copy, origin = _search_copy(text)
    if "@" in copy:
        spans += [(*_back(m.start(), m.end(), origin), "email") for m in _EMAIL.finditer(copy)]
    if _DIGIT.search(copy):
        spans += [(*_back(m.start(), m.end(), origin), "address") for m in _ADDRESS.finditer(copy)]
        spans += _phones(copy, origin)
        spans += _postal_codes(copy, origin)
        spans += _long_numbers(copy, origin)
    if _NAME_CUE.search(text):
        spans += _names(text)
    if not spans:
        return Masked(text, frozenset())
    kept: list[tuple[int, int, MaskKind]] = []
    for start, end, kind in spans:
        if start < end and all(end <= s or start >= e for s, e, _ in kept):
            kept.append((start, end, kind))
    pieces: list[str] = []
    position = 0
    for start, end, kind in sorted(kept):
        pieces += [text[position:start], PLACEHOLDERS[kind]]
        position = end
    pieces.append(text[position:])
    return Masked("".join(pieces), frozenset(kind for _, _, kind in kept))


def _search_copy(text: str) -> tuple[str, list[int] | None]:
    """An NFKC, dash-folded copy and, unless it has the same length, each character's origin.

    Normalizing character by character keeps the mapping exact even where NFKC turns
    one character into several (㈱ → (株)).
    """
    if text.isascii():
        return text, None
    pieces: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = unicodedata.normalize("NFKC", char) if ord(char) >= 0x80 else char
        pieces.append(folded)
        origin += [index] * len(folded)
    copy = _LONG_MARK_DASH.sub("-", "".join(pieces).translate(_DASHES))
    if len(copy) == len(text):
        return copy, None
    origin.append(len(text))
    return copy, origin


def _back(start: int, end: int, origin: list[int] | None) -> tuple[int, int]:
    """A span of the search copy as a span of the original text."""
    if origin is None:
        return start, end
    return origin[start], origin[end - 1] + 1


def _phones(copy: str, origin: list[int] | None) -> list[tuple[int, int, MaskKind]]:
    if len(_DIGIT.findall(copy)) < _MIN_PHONE_DIGITS:
        return []
    matches = phonenumbers.PhoneNumberMatcher(copy, "JP", leniency=_PHONE_LENIENCY)
    return [(*_back(m.start, m.end, origin), "phone") for m in matches]


def _postal_codes(copy: str, origin: list[int] | None) -> list[tuple[int, int, MaskKind]]:
    spans: list[tuple[int, int, MaskKind]] = []
    for match in _POSTAL.finditer(copy):
        start = match.start() if match["marked"] else match.start("cued" if match["cued"] else "bare")
        spans.append((*_back(start, match.end(), origin), "postal"))
    return spans


def _long_numbers(copy: str, origin: list[int] | None) -> list[tuple[int, int, MaskKind]]:
    spans: list[tuple[int, int, MaskKind]] = []
    for match in _DIGIT_RUN.finditer(copy):
        run = match.group()
        if sum(c.isdigit() for c in run) < _MIN_NUMBER_DIGITS:
            continue
        if _DATE_SHAPE.fullmatch(run) or _COMPACT_DATE.fullmatch(run) or _YEAR_RANGE.fullmatch(run):
            continue
        if _UNIT_AFTER.match(copy, match.end()) or copy[match.start() - 1 : match.start()] in _CURRENCY_BEFORE:
            continue
        spans.append((*_back(match.start(), match.end(), origin), "number"))
    return spans


def _names(text: str) -> list[tuple[int, int, MaskKind]]:
    """Person names that introduce the writer, found by UniDic and by their position.

    Only a name followed by です/と申します/と言います (or after 名前は) is taken: UniDic
    tags a few ordinary words as names, and a bare name elsewhere is too weak a signal.
    """
    with TAGGER_LOCK:  # the tagger retrieval's text processing uses (bot.text)
        words = [(w.surface, w.feature.pos1, w.feature.pos2, w.feature.pos3, w.feature.lemma) for w in tagger()(text)]
    offsets: list[int] = []
    position = 0
    for surface, *_ in words:
        position = text.find(surface, position)
        if position < 0:
            return []
        offsets.append(position)
        position += len(surface)

    def is_name(i: int) -> bool:
        return words[i][2] == "固有名詞" and words[i][3] == "人名"

    def adjacent(i: int) -> bool:
        gap = text[offsets[i - 1] + len(words[i - 1][0]) : offsets[i]]
        return not gap or gap.isspace()

    spans: list[tuple[int, int, MaskKind]] = []
    i = 0
    while i < len(words):
        if not is_name(i):
            i += 1
            continue
        j = i + 1
        while j < len(words):
            if j + 1 < len(words) and words[j][1] == "空白" and is_name(j + 1):
                j += 1
            elif not (is_name(j) and adjacent(j)):
                break
            j += 1
        after = j
        if after < len(words) and words[after][0] in _NAME_SUFFIXES:
            after += 1
        if after < len(words) and words[after][1] == "空白":
            after += 1
        if _is_intro_cue(words, after) or _is_after_label(words, i):
            spans.append((offsets[i], offsets[j - 1] + len(words[j - 1][0]), "name"))
        i = j
    for match in _INTRO_FALLBACK.finditer(text):
        rest = text[match.end() :]
        if re.match(r"[^。、！？!?\s]*?ます(?:か|でしょうか)", rest):
            continue
        if match["verb"] not in ("と申し", "と申す", "と名乗") and not _PLAIN_SAY_CONTEXT.search(text[: match.start()]):
            continue
        spans.append((match.start("name"), match.end("name"), "name"))
    return spans


def _is_intro_cue(words: list[tuple[str, str, str, str, str]], i: int) -> bool:
    """Whether the words from `i` on read です, でございます or と申します/と言います/と名乗る."""
    if i >= len(words):
        return False
    surface, pos1, _, _, lemma = words[i]
    if pos1 == "助動詞" and lemma == "です":
        return True
    if surface == "で" and i + 1 < len(words) and words[i + 1][4] == "御座る":
        return True
    return surface == "と" and pos1 == "助詞" and i + 1 < len(words) and words[i + 1][4] in _INTRO_VERBS


def _is_after_label(words: list[tuple[str, str, str, str, str]], i: int) -> bool:
    """Whether the words before `i` read 名前は, 氏名： and the like."""
    if i < 2:
        return False
    return words[i - 2][0] in _NAME_LABELS and words[i - 1][0] in ("は", ":", "：", "が")


_PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS.values())))


def strip_placeholders(masked: str) -> str:
    """Masked text without its placeholders, for matching the question it asks."""
    return re.sub(r"\s+", " ", _PLACEHOLDER.sub(" ", masked)).strip()
