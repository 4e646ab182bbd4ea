"""Fusion on the real corpus and model: each signal matters where it should."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import bm25s
import faiss
import numpy as np
import pytest

from bot.engine import Engine, assemble, fusion_weights
from bot.index import ASKED_KINDS, WRITTEN_KINDS, field_rows
from bot.retrieve import standardize


def test_standardize_ignores_constant_signals() -> None:
    assert np.all(standardize(np.array([0.8, 0.8, 0.8])) == 0)
    z = standardize(np.array([1.0, 2.0, 3.0]))
    assert abs(float(z.mean())) < 1e-9 and abs(float(z.std()) - 1.0) < 1e-9


def test_every_entry_is_ranked_once_best_first(engine: Engine) -> None:
    ranked = engine.retriever.rank("セミナーの資料")
    assert len(ranked) == len(engine.corpus.entries) == len({c.entry.id for c in ranked})
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)


def test_hiragana_query_finds_its_entry(engine: Engine) -> None:
    assert engine.retriever.rank("せみなーのしりょうはもらえますか")[0].entry.id == "seminar-materials"


def test_questions_spelled_in_kana_meet_their_kana_row(engine: Engine) -> None:
    for entry in engine.corpus.entries:
        kana = engine.text.kana_spelling(entry.question)
        ranked = engine.retriever.rank(kana)
        own = next(c for c in ranked if c.entry.id == entry.id)
        assert own.question > 0.99 and own.question == max(c.question for c in ranked), kana


def test_out_of_scope_words_lower_coverage(engine: Engine) -> None:
    inside = engine.retriever.rank("セミナーの録画はできますか")[0]
    outside = engine.retriever.rank("セミナーの参加費はいくら")[0]
    assert inside.coverage > outside.coverage


@pytest.fixture(scope="module")
def plain(engine: Engine) -> Engine:
    """The same index and corpus, with queries ranked only as typed."""
    return assemble(engine.settings.model_copy(update={"respell_kana": False}), engine.corpus, engine.faq_index)


def test_queries_typed_in_hiragana_are_also_ranked_respelled(engine: Engine, plain: Engine) -> None:
    query = "せみなーはどこでやりますか"
    respelled = engine.retriever.rank(query)
    assert respelled[0].entry.id == "seminar-format"
    as_typed = next(c for c in plain.retriever.rank(query) if c.entry.id == "seminar-format")
    assert respelled[0].question > as_typed.question


def test_queries_without_corpus_readings_in_their_hiragana_rank_as_before(engine: Engine, plain: Engine) -> None:
    query = "セミナーの資料はもらえますか"
    assert engine.retriever.rank(query) == plain.retriever.rank(query)


def test_a_known_unanswered_question_is_routed_by_its_own_feature(engine: Engine) -> None:
    # Near-domain: every other signal says general-definition, which does not say when.
    query = "東京都のカスハラ防止条例っていつから施行されてるんですか"
    assert query in {u.query for u in engine.corpus.unanswered}
    ranked = engine.retriever.rank(query)
    assert ranked[0].unanswered > 0.99 and {c.unanswered for c in ranked} == {ranked[0].unanswered}
    assert not engine.answerer.reply(ranked).answered
    assert engine.answerer.reply([replace(c, unanswered=0.0) for c in ranked]).answered
    assert engine.retriever.rank("カスハラって何？")[0].unanswered < ranked[0].unanswered - 0.2


def test_unanswered_cosines_follow_the_list(engine: Engine) -> None:
    ranked, cosines = engine.retriever.rank_with_unanswered("セミナーの申込はいつまで受け付けてますか")
    assert ranked == engine.retriever.rank("セミナーの申込はいつまで受け付けてますか")
    assert cosines.shape == (len(engine.corpus.unanswered),)
    best = int(np.argmax(cosines))
    assert engine.corpus.unanswered[best].query == "セミナーの申込はいつまで受け付けてますか"


def test_a_query_asked_again_is_served_from_the_cache_by_its_normalized_text(engine: Engine) -> None:
    retriever = engine.retriever
    first = retriever.ranking("セミナーの資料はもらえますか")
    assert retriever.ranking("  セミナーの資料はもらえますか ") is first
    assert retriever.ranking("ｾﾐﾅｰの資料はもらえますか") is first, "half-width katakana is the same query"
    assert retriever.ranking("セミナーの録画はありますか") is not first
    uncached = assemble(engine.settings.model_copy(update={"cache_size": 0}), engine.corpus, engine.faq_index, engine.text)
    again = uncached.retriever.ranking("セミナーの資料はもらえますか")
    assert again is not uncached.retriever.ranking("セミナーの資料はもらえますか")
    assert [c.entry.id for c in again.candidates] == [c.entry.id for c in first.candidates]
    rebuilt = assemble(engine.settings, engine.corpus, engine.faq_index, engine.text)  # what a reload does
    assert rebuilt.retriever.ranking("セミナーの資料はもらえますか") is not first


def _reference_ranking(engine: Engine, query: str) -> list[tuple[str, float, float, float, float, float, float]]:
    """The fused ranking computed the plain way: every row searched, per-entry maxima in a
    loop, BM25 over all entries, coverage word by word (the retriever's exact path must
    give these numbers)."""
    retriever, faq_index, corpus, text = engine.retriever, engine.faq_index, engine.corpus, engine.text
    w = fusion_weights(engine.settings)
    ranking = retriever.ranking(query)
    fields = field_rows(corpus, text)
    position = {e.id: i for i, e in enumerate(corpus.entries)}
    n = len(corpus.entries)

    def dense(index: faiss.Index, vectors: np.ndarray) -> list[np.ndarray]:
        per_spelling = []
        for v in vectors:
            sims, ids = index.search(v.reshape(1, -1), index.ntotal)
            row_sim = dict(zip(ids[0].tolist(), sims[0].tolist()))
            best = {kind: np.full(n, -1.0, dtype=np.float32) for kind in ("asked", "answer", "chunk")}
            for r, (row, _) in enumerate(fields):
                kind = "asked" if row.kind in ASKED_KINDS else row.kind
                e = position[row.entry_id]
                best[kind][e] = max(best[kind][e], np.float32(row_sim[r]))
            per_spelling.append(np.stack([best["asked"], best["answer"], np.maximum(best["chunk"], best["answer"])]))
        return list(np.max(np.stack(per_spelling), axis=0))

    tokens: list[list[str]] = [[] for _ in range(n)]
    grams: list[list[str]] = [[] for _ in range(n)]
    for row, field in fields:
        if row.kind in WRITTEN_KINDS:
            lemmas, bigrams = text.analyze(field)
            tokens[position[row.entry_id]] += lemmas
            grams[position[row.entry_id]] += bigrams
    sets = [set(t) for t in tokens]
    df = Counter(t for s in sets for t in s)
    idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def bm25(documents: list[list[str]], query_terms: list[str]) -> np.ndarray:
        model = bm25s.BM25()
        model.index(documents, show_progress=False)
        known = [t for t in query_terms if t in model.vocab_dict]
        return np.asarray(model.get_scores(known), dtype=np.float32) if known else np.zeros(n, dtype=np.float32)

    def coverage(query_terms: set[str]) -> np.ndarray:
        if not query_terms:
            return np.zeros(n, dtype=np.float32)
        weights = {t: idf.get(t, max(idf.values())) for t in query_terms}
        total = sum(weights.values())
        return np.array([sum(wt for t, wt in weights.items() if t in s) / total for s in sets], dtype=np.float32)

    lexical = []
    for spelling in retriever.spellings(query):
        lemmas, bigrams = text.analyze(spelling)
        lexical.append(np.stack([bm25(tokens, lemmas), bm25(grams, bigrams), coverage(set(lemmas))]))
    lex, reading, cover = np.max(np.stack(lexical), axis=0)
    question, answer, chunk = dense(faq_index.index, ranking.vectors)
    fused = (
        w.question * standardize(question) + w.answer * standardize(answer) + w.chunk * standardize(chunk)
        + w.lexical * standardize(lex) + w.reading * standardize(reading)
    )
    assert faq_index.base is not None and ranking.base_vectors is not None
    base_question, _, base_chunk = dense(faq_index.base.index, ranking.base_vectors)
    fused += w.base_question * standardize(base_question) + w.base_chunk * standardize(base_chunk)
    order = np.argsort(-fused, kind="stable")
    return [
        (corpus.entries[i].id, float(fused[i]), float(question[i]), float(answer[i]), float(lex[i]), float(reading[i]), float(cover[i]))
        for i in order
    ]


@pytest.mark.parametrize(
    "query",
    ["セミナーの資料はもらえますか", "せみなーのしりょうはもらえますか", "semina no shiryo wa moraemasu ka", "カスハラって何？", "羽田まで首都高混んでる", "？"],
)
def test_the_exact_path_gives_the_plain_computation_s_numbers(engine: Engine, query: str) -> None:
    assert engine.retriever.exhaustive
    got = [(c.entry.id, c.score, c.question, c.answer, c.lexical, c.reading, c.coverage) for c in engine.retriever.rank(query)]
    assert got == _reference_ranking(engine, query)
