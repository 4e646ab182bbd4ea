from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.corpus import HELD_OUT_SPLIT, REACH_HELD_OUT_SPLIT, TUNING_SPLITS, load_corpus, load_eval_set
from bot.errors import CorpusError
from bot.text import normalize

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "000_0cea0695475fb337.txt"


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "corpus", tmp_path, dirs_exist_ok=True)
    return tmp_path


def write_faq(folder: Path, body: str) -> None:
    (folder / "faq.yaml").write_text(body, encoding="utf-8")


def test_real_corpus_loads_with_three_categories() -> None:
    corpus = load_corpus(ROOT / "corpus")
    assert len(corpus.entries) == 20
    assert {e.category for e in corpus.entries} == {"総合相談窓口", "団体・企業向けセミナー", "団体向け専門家派遣"}
    assert all(len(e.alternates) >= 5 for e in corpus.entries)


@pytest.mark.skipif(not SEED.exists(), reason="shared seed not beside the checkout")
def test_questions_and_answers_are_verbatim_from_the_seed() -> None:
    seed = SEED.read_text(encoding="utf-8")
    corpus = load_corpus(ROOT / "corpus")
    for entry in corpus.entries:
        assert entry.question in seed, entry.id
        assert entry.answer in seed, entry.id
    email = "info@customer-harassment-taisaku.metro.tokyo.lg.jp"
    assert email in corpus.entry("seminar-application-status").answer
    assert "\n※" in corpus.entry("seminar-recording").answer


def test_eval_set_has_enough_labelled_queries() -> None:
    corpus = load_corpus(ROOT / "corpus")
    queries = load_eval_set(ROOT / "corpus", corpus)
    for entry in corpus.entries:
        assert sum(q.id == entry.id for q in queries) >= 3
    assert sum(q.id is None for q in queries) >= 30
    assert {q.split for q in queries} == {"tune", "test", "test2", "test3", "test4", "test5", "test6", "test7", "test8"}


def test_unanswered_questions_come_from_tuning_data_only() -> None:
    """Each comes from a tuning split, or was written for the list itself (the English and
    romaji ones, and those after the languages set's misses); none from a held-out set."""
    corpus = load_corpus(ROOT / "corpus")
    assert len(corpus.unanswered) >= 200
    assert {u.source for u in corpus.unanswered} <= {*TUNING_SPLITS, "english", "reach"}
    held_out = {q.query for q in load_eval_set(ROOT / "corpus", corpus) if q.split == HELD_OUT_SPLIT}
    assert held_out and not held_out & {u.query for u in corpus.unanswered}
    reach = yaml.safe_load((ROOT / "corpus" / "eval_reach.yaml").read_text(encoding="utf-8"))["items"]
    assert not {i["query"] for i in reach} & {u.query for u in corpus.unanswered if u.source in ("english", "reach")}


def test_editing_the_unanswered_list_makes_the_index_stale(corpus_dir: Path) -> None:
    before = load_corpus(corpus_dir).content_hash
    with (corpus_dir / "unanswered.yaml").open("a", encoding="utf-8") as f:
        f.write('  - {query: "区役所の駐車場は何台とめられますか", source: tune}\n')
    assert load_corpus(corpus_dir).content_hash != before


def test_unanswered_question_without_source_is_refused(corpus_dir: Path) -> None:
    (corpus_dir / "unanswered.yaml").write_text('questions:\n  - {query: "天気は？"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="unanswered.yaml: question 1: field 'source': Field required"):
        load_corpus(corpus_dir)


ENTRY = """
  - id: {id}
    category: {category}
    question: 質問です。
    answer: {answer}
"""


def test_duplicate_id_names_file_entry_and_field(corpus_dir: Path) -> None:
    one = ENTRY.format(id="same-id", category="総合相談窓口", answer="回答")
    write_faq(corpus_dir, "entries:" + one + one)
    with pytest.raises(CorpusError) as err:
        load_corpus(corpus_dir)
    message = str(err.value)
    assert "faq.yaml" in message and "entry 2 (id 'same-id')" in message and "'id'" in message
    assert "duplicate" in message


def test_empty_answer_is_refused(corpus_dir: Path) -> None:
    write_faq(corpus_dir, "entries:" + ENTRY.format(id="a", category="総合相談窓口", answer='"  "'))
    with pytest.raises(CorpusError, match=r"entry 1 \(id 'a'\): field 'answer': must not be empty"):
        load_corpus(corpus_dir)


def test_unknown_category_lists_the_valid_ones(corpus_dir: Path) -> None:
    write_faq(corpus_dir, "entries:" + ENTRY.format(id="a", category="その他", answer="回答"))
    with pytest.raises(CorpusError, match="field 'category': unknown category 'その他'; expected one of 総合相談窓口"):
        load_corpus(corpus_dir)


def test_bad_yaml_reports_the_line(corpus_dir: Path) -> None:
    write_faq(corpus_dir, "entries:\n  - id: a\n    question: [unclosed\n    answer: x\n")
    with pytest.raises(CorpusError, match=r"faq.yaml: line \d+, column \d+: invalid YAML"):
        load_corpus(corpus_dir)


def test_misspelled_field_is_named(corpus_dir: Path) -> None:
    write_faq(corpus_dir, "entries:\n  - id: a\n    category: 総合相談窓口\n    question: q\n    answer: a\n    alternate: [x]\n")
    with pytest.raises(CorpusError, match="field 'alternate': unknown field"):
        load_corpus(corpus_dir)


def test_missing_field_is_named(corpus_dir: Path) -> None:
    write_faq(corpus_dir, "entries:\n  - id: a\n    category: 総合相談窓口\n    question: q\n")
    with pytest.raises(CorpusError, match="entry 1 \\(id 'a'\\): field 'answer'"):
        load_corpus(corpus_dir)


def test_bad_id_format(corpus_dir: Path) -> None:
    write_faq(corpus_dir, "entries:" + ENTRY.format(id="Bad Id", category="総合相談窓口", answer="x"))
    with pytest.raises(CorpusError, match="field 'id': must be lowercase"):
        load_corpus(corpus_dir)


def test_eval_set_with_unknown_id_is_refused(corpus_dir: Path) -> None:
    corpus = load_corpus(corpus_dir)
    (corpus_dir / "eval.yaml").write_text(
        'in_domain:\n  - {query: "x", id: nope, split: tune}\nout_of_scope: []\n', encoding="utf-8"
    )
    with pytest.raises(CorpusError, match="in_domain item 1: field 'id': unknown entry id 'nope'"):
        load_eval_set(corpus_dir, corpus)


def test_contacts_unset_are_reported_missing() -> None:
    corpus = load_corpus(ROOT / "corpus")
    assert corpus.contacts.missing() == ["form_url", "phone", "hours"]


def test_the_held_out_reach_split_shares_no_text_with_what_the_bot_learns_from() -> None:
    """The held-out split of eval_reach.yaml reports the languages, small-talk and safety figures, so
    none of its messages is an unanswered question, a small-talk example or a safety example."""
    corpus = load_corpus(ROOT / "corpus")
    reach = yaml.safe_load((ROOT / "corpus" / "eval_reach.yaml").read_text(encoding="utf-8"))["items"]
    held_out = {normalize(i["query"]) for i in reach if i["split"] == REACH_HELD_OUT_SPLIT}
    assert len(held_out) >= 250
    seen = {normalize(i["query"]) for i in reach if i["split"] != REACH_HELD_OUT_SPLIT}
    seen |= {normalize(u.query) for u in corpus.unanswered}
    smalltalk = yaml.safe_load((ROOT / "corpus" / "smalltalk.yaml").read_text(encoding="utf-8"))["intents"]
    seen |= {normalize(e) for intent in smalltalk for e in intent["examples"]}
    safety = yaml.safe_load((ROOT / "corpus" / "safety.yaml").read_text(encoding="utf-8"))
    seen |= {normalize(e) for kind in ("urgent_examples", "crisis_examples", "calm_examples") for e in safety[kind]}
    assert not held_out & seen
