"""Which language a message is in, and romaji turned back into kana.

People who write to the desk include service workers who write English, Chinese,
Korean, Vietnamese or Nepali, and people who type Japanese in Latin letters
("semina no shiryo moraemasu ka"). The script decides most cases at once; Latin text
is told apart as romaji when nearly every word is a well-formed run of Japanese
syllables, and otherwise named by py3langid among the Latin-script languages.
Romaji is converted to hiragana with jaconv, so it is ranked like kana input.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache

import jaconv

_HIRAGANA_KATAKANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\uff66-\uff9d]")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_LETTER = re.compile(r"[a-z]")
# Letters only Vietnamese uses among the languages people write to the desk in.
_VIETNAMESE = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]")
# Characters and words that written Chinese uses and Japanese does not (simplified forms,
# and function words a Japanese text in kanji alone would not contain).
_CHINESE = re.compile(r"[们这吗么你说请问为么时间吗呢没过还让给对会来们个该应]|什么|怎么|是否|可以吗")
# Hepburn and Kunrei syllables, with doubled consonants (kk, tt) and the syllabic n.
_ROMAJI_WORD = re.compile(
    r"(?:(?:([kgsztdnhbpmrfjcv])\1)?"
    r"(?:ky|gy|sh|sy|ch|ty|ts|ny|hy|by|py|my|ry|dy|zy|j|f|[kgsztdnhbpmyrwv])?"
    r"[aiueo]|n(?![aiueoy]))+"
)
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
LATIN_LANGUAGES = ("en", "vi", "id", "tl", "es", "pt", "fr", "de", "ms")
_ROMAJI_SHARE = 0.7
_DOUBLE_N = re.compile(r"(?<!n)nn(?=[aiueoy])")
_MACRONS = str.maketrans({"ā": "aa", "ī": "ii", "ū": "uu", "ē": "ei", "ō": "ou", "â": "aa", "î": "ii", "û": "uu", "ê": "ei", "ô": "ou"})
# py3langid guesses at random on a word or two ("hi" as German): short Latin text is English.
_SHORT_WORDS = 2


def fold_latin(text: str) -> str:
    """NFKC and lower case: full-width Latin letters are the same letters."""
    return unicodedata.normalize("NFKC", text).lower()


def romaji_words(text: str) -> tuple[int, int]:
    """(words that are well-formed romaji, Latin words) in the text."""
    words = _WORD.findall(fold_latin(text))
    return sum(1 for w in words if _ROMAJI_WORD.fullmatch(w.replace("-", "").replace("'", ""))), len(words)


def is_romaji(text: str) -> bool:
    """Japanese written in Latin letters: no Japanese script, and nearly every word is a
    run of Japanese syllables ("semina", "moraemasu"); English words rarely are ("the",
    "seminar", "online")."""
    folded = fold_latin(text)
    if _HIRAGANA_KATAKANA.search(folded) or _HAN.search(folded) or not _LATIN_LETTER.search(folded):
        return False
    good, total = romaji_words(folded)
    return total >= 2 and good / total >= _ROMAJI_SHARE or (total == 1 and good == 1 and len(folded.strip()) >= 6)


def romaji_to_kana(text: str) -> str:
    """The romaji as hiragana ("shiryo moraemasu" -> "しりょ もらえます"); the spaces between
    words go, as Japanese is written without them."""
    # jaconv reads "nn" as ん even before a vowel ("konnichiwa", "minna"); Hepburn means ん + な行.
    latin = _DOUBLE_N.sub("n'n", fold_latin(text).translate(_MACRONS))
    # A doubled a is a loanword's long vowel (seminaa: セミナー), which the FAQ writes with ー.
    latin = latin.replace("aa", "a-")
    kana = jaconv.alphabet2kana(latin).replace("'", "")
    return re.sub(r"(?<=[\u3041-\u30fc])\s+(?=[\u3041-\u30fc])", "", kana)


@cache
def _langid() -> object:
    import py3langid

    identifier = py3langid.langid.LanguageIdentifier.from_model_file(py3langid.langid.MODEL_FILE)
    identifier.set_languages(list(LATIN_LANGUAGES))
    return identifier


_langid_lock = threading.Lock()


def detect_language(text: str) -> str:
    """The message's language as a BCP 47 code: "ja" (romaji included), "en", "zh", "ko",
    "vi", "ne", … From the script where it decides, from py3langid for other Latin text."""
    folded = fold_latin(text)
    if _HIRAGANA_KATAKANA.search(folded):
        return "ja"
    if _HANGUL.search(folded):
        return "ko"
    if _DEVANAGARI.search(folded):
        return "ne"
    if _HAN.search(folded):
        return "zh" if _CHINESE.search(folded) else "ja"
    if not _LATIN_LETTER.search(folded):
        return "ja"
    if _VIETNAMESE.search(folded):
        return "vi"
    if is_romaji(folded):
        return "ja"
    if len(_WORD.findall(folded)) <= _SHORT_WORDS:
        return "en"
    with _langid_lock:
        code, _ = _langid().classify(folded)  # type: ignore[attr-defined]
    return str(code)


def warm_up() -> None:
    """Load the language model now rather than on the first English question."""
    detect_language("warm up")
