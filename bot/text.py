"""Text normalization, synonym folding and fugashi tokenization.

Queries and FAQ entries go through the same steps, so that "ｶｽﾊﾗ", "カスハラ" and
"カスタマーハラスメント" meet in one form before either side of retrieval sees them.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import cache

import fugashi

# Parts of speech (UniDic pos1) that carry no topic: particles, auxiliaries, symbols.
_DROPPED_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白"})
# Light verbs that appear in almost every question ("する", "ある", "いる", "なる").
_STOP_LEMMAS = frozenset({"為る", "有る", "居る", "成る", "ござる", "いただく", "下さる", "頂く"})
_SYMBOL_POS = frozenset({"補助記号", "記号", "空白"})
_HIRAGANA_TO_KATAKANA = {cp: cp + 0x60 for cp in range(0x3041, 0x3097)}
_KATAKANA_TO_HIRAGANA = {cp + 0x60: cp for cp in range(0x3041, 0x3097)}
_KANJI = re.compile(r"[\u3005\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KATAKANA = re.compile(r"[\u30a1-\u30fa]")
_HIRAGANA_RUN = re.compile(r"[\u3041-\u3096\u30fc]+")
# Word classes a respelled word may start with, and those a compound may continue with.
_RESPELL_HEAD_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞"})
_RESPELL_TAIL_POS = frozenset({"名詞", "接尾辞"})
_RESPELL_MAX_WORDS = 3
# Shorter readings (こと, ため, 日 as "ひ") would respell ordinary hiragana words.
_RESPELL_MIN_KANA = 3
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[。．！？!?\n])")


# Held while a parse's words are read: a parse reuses the tagger's lattice, so another
# thread's parse would change the words of one still being read.
TAGGER_LOCK = threading.Lock()


@cache
def tagger() -> fugashi.Tagger:
    """The process's one MeCab tagger (hold TAGGER_LOCK while parsing and reading words).

    Why one: each tagger maps UniDic's 250 MB of dictionary files again, and a process's
    RSS counts each mapping's pages, so a second tagger reading the same messages (the
    masking of personal data) doubled the dictionary's share, about 45 MiB after 60
    questions and 120 MiB after 3,350. Loading it also takes far longer than tagging."""
    return fugashi.Tagger()


def normalize(text: str) -> str:
    """NFKC (full/half width), lower case, single spaces, no outer whitespace."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def to_katakana(text: str) -> str:
    """Hiragana to katakana; everything else unchanged."""
    return text.translate(_HIRAGANA_TO_KATAKANA)


def split_passage(text: str, max_chars: int) -> list[str]:
    """Consecutive sentences grouped into pieces of at most about `max_chars`."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        if not sentence.strip():
            continue
        if current and len(current) + len(sentence) > max_chars:
            pieces.append(current.strip())
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current.strip())
    return pieces


class TextProcessor:
    """Normalizes, folds synonyms and tokenizes to lemmas, with the process's one tagger."""

    def __init__(self, synonyms: Iterable[Sequence[str]] = ()) -> None:
        self._canonical: dict[str, str] = {}
        for group in synonyms:
            canonical = normalize(group[0])
            for variant in group[1:]:
                key = normalize(variant)
                if key and key != canonical:
                    self._canonical[key] = canonical
        variants = sorted(self._canonical, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, variants))) if variants else None

    def fold(self, text: str) -> str:
        """Normalized text with every synonym replaced by its group's canonical form."""
        text = normalize(text)
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._canonical[m.group(0)], text)

    def analyze(self, text: str) -> tuple[list[str], list[str]]:
        """Lemmas and reading bigrams from a single MeCab parse (the query hot path)."""
        lemmas: list[str] = []
        reading: list[str] = []
        folded = self.fold(text)
        with TAGGER_LOCK:
            for word in tagger()(folded):
                feature = word.feature
                if feature.pos1 not in _SYMBOL_POS:
                    reading.append(feature.kana or to_katakana(word.surface))
                if feature.pos1 in _DROPPED_POS:
                    continue
                lemma = feature.lemma or word.surface
                lemma = lemma.split("-", 1)[0] if "-" in lemma[1:] else lemma
                if lemma not in _STOP_LEMMAS:
                    lemmas.append(lemma.lower())
        joined = "".join(reading)
        return lemmas, [joined[i : i + 2] for i in range(len(joined) - 1)]

    def kana_spelling(self, text: str) -> str:
        """The folded text with every word written in kanji spelled out in hiragana.

        Some people type whole questions in kana ("せんもんかはどうきまるの"), which the
        embedding model reads poorly against the kanji of the FAQ; indexing a kana
        spelling of each question lets such queries meet one written like them.
        Katakana, Latin letters and digits stay as typed, as people write them.
        """
        folded = self.fold(text)
        with TAGGER_LOCK:
            return "".join(
                word.white_space
                + (
                    (word.feature.kana or word.surface).translate(_KATAKANA_TO_HIRAGANA)
                    if _KANJI.search(word.surface)
                    else word.surface
                )
                for word in tagger()(folded)
            )

    def spellings(self, texts: Iterable[str]) -> dict[str, str]:
        """Hiragana reading -> the spelling these texts use, for words and noun compounds
        written in kanji or katakana ("せんもんか" -> "専門家", "せみなー" -> "セミナー").

        Readings that the texts themselves write in hiragana somewhere ("してい" in
        "しています", "いない") are left out: respelling them would break ordinary words.
        """
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        written: list[str] = []
        for text in texts:
            folded = self.fold(text)
            written += _HIRAGANA_RUN.findall(folded)
            with TAGGER_LOCK:
                words = [(w.surface, w.feature.pos1, w.feature.kana) for w in tagger()(folded)]
            for start, (_, pos, _) in enumerate(words):
                if pos not in _RESPELL_HEAD_POS:
                    continue
                for end in range(start + 1, min(start + _RESPELL_MAX_WORDS, len(words)) + 1):
                    span = words[start:end]
                    if (end - start > 1 and span[-1][1] not in _RESPELL_TAIL_POS) or not span[-1][2]:
                        break
                    surface = "".join(w[0] for w in span)
                    reading = "".join(w[2] for w in span).translate(_KATAKANA_TO_HIRAGANA)
                    if len(reading) >= _RESPELL_MIN_KANA and (_KANJI.search(surface) or _KATAKANA.search(surface)):
                        counts[reading][surface] += 1
        in_hiragana = _occurring_in(counts.keys(), written)
        return {r: c.most_common(1)[0][0] for r, c in counts.items() if r not in in_hiragana}

    def tokens(self, text: str) -> list[str]:
        """Content-word lemmas of the folded text, for the lexical (BM25) side."""
        return self.analyze(text)[0]

    def reading_grams(self, text: str) -> list[str]:
        """Character bigrams of the text's katakana reading.

        People often type in hiragana ("しりょうはもらえますか"); the reading meets the
        kanji of the FAQ ("資料") where lemmas and the embedding model do not.
        """
        return self.analyze(text)[1]


def _occurring_in(readings: Iterable[str], runs: Iterable[str]) -> set[str]:
    """The readings that occur inside any of the runs; pieces of the runs are indexed by
    their first characters, as testing each reading against all the text took seconds
    on a corpus of two thousand entries."""
    readings = set(readings)
    longest = max(map(len, readings), default=0)
    pieces: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        for i in range(len(run) - _RESPELL_MIN_KANA + 1):
            pieces[run[i : i + _RESPELL_MIN_KANA]].append(run[i : i + longest])
    return {r for r in readings if any(p.startswith(r) for p in pieces.get(r[:_RESPELL_MIN_KANA], ()))}


class KanaRespeller:
    """Respells the hiragana of a query with the corpus's own words, by their reading.

    Some people type whole questions in hiragana ("はけんのにちじのきめかた",
    "せみなーはどこでやりますか"). The embedding model and the lemma index read those poorly,
    and MeCab cannot segment them reliably; but the corpus tells which words it writes
    in kanji or katakana, and their readings, so a longest-match over the hiragana runs
    turns the query back into the corpus's spelling ("派遣の日時の決め方", "セミナーはどこでやりますか").
    """

    def __init__(self, spellings: Mapping[str, str]) -> None:
        self._spellings = dict(spellings)
        self._longest = max(map(len, self._spellings), default=0)

    def respell(self, folded: str) -> str:
        """The folded query with every known reading in its hiragana runs respelled."""
        if not self._spellings:
            return folded
        return _HIRAGANA_RUN.sub(lambda m: self._respell_run(m.group(0)), folded)

    def _respell_run(self, run: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(run):
            for length in range(min(self._longest, len(run) - i), _RESPELL_MIN_KANA - 1, -1):
                spelling = self._spellings.get(run[i : i + length])
                if spelling is not None:
                    out.append(spelling)
                    i += length
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)
