"""The small Unigram tokenizer gives exactly the ids of the `tokenizers` library."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from tokenizers import Tokenizer

from bot.corpus import Corpus
from bot.embed.unigram import LibraryTokenizer, UnigramTokenizer, load_tokenizer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tokenizer_file(model_dir: Path) -> Path:
    return model_dir / "0_Transformer" / "tokenizer.json"


def texts(corpus: Corpus) -> list[str]:
    """Every text the bot embeds or is asked in its corpus, and strings made to be hard:
    special tokens typed in, control characters, characters no piece covers, truncation."""
    found = [e.question for e in corpus.entries] + [e.answer for e in corpus.entries]
    found += [a for e in corpus.entries for a in e.alternates] + [u.query for u in corpus.unanswered]
    reach = yaml.safe_load((ROOT / "corpus" / "eval_reach.yaml").read_text(encoding="utf-8"))["items"]
    found += [item["query"] for item in reach[::3]]
    found += ["", " ", "  a  b ", "<s>hello</s>", "x<mask>y", "<unk><unk>", "\x01\x02 tab\tnew\nline"]
    found += ["🙂🙃🦄", "\ue000\ue001abc\ue002", "ｶｽﾊﾗ", "Ⅻ ㍻ ﬁ", "a" * 600, "日本語" * 300, "\U00010000\U00010001x"]
    rng = random.Random(7)
    alphabet = [chr(c) for c in (*range(0x20, 0x3000), *range(0x3040, 0x3100), *range(0x4E00, 0x4F00), *range(0xAC00, 0xAC80))]
    alphabet += ["\U0001F600", "\ue000", "\u200b", "\t", "\n", "▁", "<s>"]
    found += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(1500)]
    return found + ["query: " + t for t in found]


def test_the_same_ids_as_the_tokenizers_library(tokenizer_file: Path, corpus: Corpus) -> None:
    library = Tokenizer.from_file(str(tokenizer_file))
    library.no_padding()
    ours = load_tokenizer(tokenizer_file)
    assert isinstance(ours, UnigramTokenizer)
    for max_length in (512, 16):
        library.enable_truncation(max_length)
        batch = texts(corpus)
        want = [e.ids for e in library.encode_batch(batch)]
        got = ours.encode(batch, max_length)
        differ = [text for text, a, b in zip(batch, got, want, strict=True) if a != b]
        assert differ == []


def test_other_tokenizers_go_through_the_library(tmp_path: Path) -> None:
    from tokenizers import models, pre_tokenizers

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    word_level.save(str(path))
    loaded = load_tokenizer(path)
    assert isinstance(loaded, LibraryTokenizer)
    assert loaded.encode(["hello there world"], 8) == [[1, 0, 2]]
    assert loaded.encode(["hello there world"], 2) == [[1, 0]]
