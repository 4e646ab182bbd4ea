"""A Unigram tokenizer that gives the `tokenizers` library's ids in a tenth of its memory.

Why: `tokenizers` keeps a Unigram vocabulary in a trie of hash maps, about 290 MB for
XLM-R's 250k pieces, more than a served model. The same Viterbi search over a plain
dict of pieces holds about 35 MB and takes well under a millisecond for a message.
Only the vocabulary search is done here; the normalizer, the pre-tokenizer and the
template come from the same tokenizer.json through `tokenizers` itself (built around a
one-piece vocabulary), so the steps around the search cannot drift. Agreement with
`tokenizers` on real texts is checked by the tests.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class TokenIds(Protocol):
    """Texts → token ids with the template's special tokens, truncated to `max_length`."""

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]: ...


class UnigramTokenizer:
    def __init__(self, config: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        model = config["model"]
        pieces = model["vocab"]
        self._ids = _piece_ids(pieces)
        self._scores = array("d", (float(score) for _, score in pieces))
        self._unk_id = int(model["unk_id"])
        # As `tokenizers` scores a character no piece covers.
        self._unk_score = min(self._scores) - 10.0
        longest: dict[str, int] = {}
        for piece, _ in pieces:
            if piece and len(piece) > longest.get(piece[0], 0):
                longest[piece[0]] = len(piece)
        self._longest = longest
        shell = dict(config, model={"type": "Unigram", "unk_id": 0, "vocab": [[pieces[self._unk_id][0], 0.0]]})
        shell["added_tokens"] = []
        steps = Tokenizer.from_str(json.dumps(shell))
        self._normalizer = steps.normalizer
        self._pre_tokenizer = steps.pre_tokenizer
        added = {t["content"]: int(t["id"]) for t in config.get("added_tokens", [])}
        self._added = added
        self._split = re.compile("(" + "|".join(re.escape(t) for t in sorted(added, key=len, reverse=True)) + ")") if added else None
        self._template = _template(config.get("post_processor"))

    @classmethod
    def from_file(cls, path: Path) -> UnigramTokenizer:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    @staticmethod
    def handles(config: dict[str, Any]) -> bool:
        """Whether this class reproduces `config`: a Unigram model without byte fallback,
        special tokens matched as written, and a plain `bos $A eos` template (or none)."""
        model = config.get("model") or {}
        added_ok = all(not t.get("normalized") and not t.get("lstrip") and not t.get("rstrip") and not t.get("single_word")
                       for t in config.get("added_tokens", []))
        return (
            model.get("type") == "Unigram"
            and not model.get("byte_fallback")
            and added_ok
            and _template(config.get("post_processor")) is not None
        )

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        before, after = self._template or ((), ())
        room = max(0, max_length - len(before) - len(after))
        return [[*before, *self._ids_of(text)[:room], *after] for text in texts]

    def _ids_of(self, text: str) -> list[int]:
        out: list[int] = []
        parts = self._split.split(text) if self._split else [text]
        for part in parts:
            if not part:
                continue
            if part in self._added:
                out.append(self._added[part])
                continue
            normalized = self._normalizer.normalize_str(part) if self._normalizer else part
            words = self._pre_tokenizer.pre_tokenize_str(normalized) if self._pre_tokenizer else [(normalized, None)]
            for word, _ in words:
                out.extend(self._viterbi(word))
        return out

    def _viterbi(self, word: str) -> list[int]:
        """The best-scoring split of `word` into pieces, ties going to the split found
        first (as `tokenizers` does), characters no piece covers as one fused unknown."""
        n = len(word)
        score = [0.0] * (n + 1)
        start = [-1] * (n + 1)
        ident = [0] * (n + 1)
        start[0] = 0
        for begin in range(n):
            base = score[begin]
            single = False
            for end in range(begin + 1, min(n, begin + self._longest.get(word[begin], 0)) + 1):
                piece_id = self._ids.get(word[begin:end])
                if piece_id is None:
                    continue
                candidate = base + self._scores[piece_id]
                if start[end] < 0 or candidate > score[end]:
                    score[end], start[end], ident[end] = candidate, begin, piece_id
                single = single or end == begin + 1
            if not single:
                candidate = base + self._unk_score
                if start[begin + 1] < 0 or candidate > score[begin + 1]:
                    score[begin + 1], start[begin + 1], ident[begin + 1] = candidate, begin, self._unk_id
        ids: list[int] = []
        end = n
        while end > 0:
            ids.append(ident[end])
            end = start[end]
        ids.reverse()
        return [i for k, i in enumerate(ids) if i != self._unk_id or k == 0 or ids[k - 1] != self._unk_id]


class LibraryTokenizer:
    """Any other tokenizer.json, through `tokenizers` itself."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._length = 0

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        if max_length != self._length:
            self._tokenizer.enable_truncation(max_length)
            self._length = max_length
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]


def _piece_ids(pieces: Sequence[Sequence[Any]]) -> dict[str, int]:
    """piece → id, the pieces copied into fresh strings first.

    Why: the JSON parse left each piece string between the [piece, score] lists and
    floats around it, in the same small-object pools; keeping those strings would keep
    every pool half empty once the lists are freed (about 25 MiB of XLM-R's 250k pieces).
    Copies made from one joined string are allocated side by side, and the parse's own
    pools are then wholly freed."""
    joined = "".join(piece for piece, _ in pieces)
    ids: dict[str, int] = {}
    at = 0
    for i, (piece, _) in enumerate(pieces):
        end = at + len(piece)
        ids[joined[at:end]] = i  # a repeated piece keeps its last id, as before
        at = end
    return ids


def load_tokenizer(path: Path) -> TokenIds:
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    return UnigramTokenizer(config) if UnigramTokenizer.handles(config) else LibraryTokenizer(path)


def _template(post_processor: dict[str, Any] | None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The special ids before and after a single sequence, for a TemplateProcessing of
    the form `special… $A special…`; None for other post-processors."""
    if post_processor is None:
        return (), ()
    if post_processor.get("type") != "TemplateProcessing":
        return None
    specials = post_processor.get("special_tokens", {})
    before: list[int] = []
    after: list[int] = []
    seen_sequence = False
    for item in post_processor.get("single", []):
        if "Sequence" in item:
            if seen_sequence or item["Sequence"].get("id") != "A":
                return None
            seen_sequence = True
        elif "SpecialToken" in item:
            ids = specials.get(item["SpecialToken"]["id"], {}).get("ids")
            if not ids:
                return None
            (after if seen_sequence else before).extend(int(i) for i in ids)
        else:
            return None
    return (tuple(before), tuple(after)) if seen_sequence else None
