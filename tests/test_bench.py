"""The benchmark's parts: the corpora it builds, its ranking and dense-search figures, a real server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.bench import Client, one_client, serving, spread, synthetic_corpus
from bot.bench_ranking import ranking_at_scale
from bot.cli import app
from bot.config import Settings
from bot.corpus import load_corpus
from bot.engine import Engine
from bot.errors import FaqbotError


def test_spread_is_median_min_max() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0}


def test_a_synthetic_corpus_is_a_valid_corpus_of_that_size(tmp_path: Path, settings: Settings) -> None:
    synthetic_corpus(settings.corpus_dir, tmp_path / "big", 300)
    corpus = load_corpus(tmp_path / "big")
    assert len(corpus.entries) == 300
    assert len({e.question for e in corpus.entries}) == 300
    assert corpus.entries[0].id == load_corpus(settings.corpus_dir).entries[0].id
    small = tmp_path / "small"
    synthetic_corpus(settings.corpus_dir, small, 5)
    assert len(load_corpus(small).entries) == 5


def test_ranking_at_scale_times_the_whole_ranking_and_compares_hnsw_with_exact(tmp_path: Path, settings: Settings) -> None:
    local = settings.model_copy(update={"index_dir": tmp_path / "index" / "faq"})
    texts = ["セミナーの資料はもらえますか", "せみなーはどこでやりますか", "羽田まで首都高混んでる"]
    figures = ranking_at_scale(local, 2000, texts, rounds=1)
    ranking, search = figures["ranking"], figures["dense_search"]
    assert ranking["entries"] == 2000 and ranking["rows"] == search["rows"] == 6000
    assert 0 < ranking["p50_ms"] <= ranking["p95_ms"] and 10 <= ranking["candidates_median"] < 2000
    assert ranking["top1_agreement"] == 1.0 and 0.5 <= ranking["top10_agreement"] <= 1.0
    assert 0.9 <= search["hnsw_recall_at_10"] <= 1.0
    assert search["exact_p50_ms"] > 0 and search["hnsw_p50_ms"] > 0
    kept = list((tmp_path / "index" / "bench").iterdir())
    assert len(kept) == 1, "the HNSW graph is kept for the next run"
    again = ranking_at_scale(local, 2000, texts, rounds=1)["dense_search"]
    assert again["hnsw_build_s"] == search["hnsw_build_s"] and again["hnsw_recall_at_10"] == search["hnsw_recall_at_10"]
    exact = ranking_at_scale(local, 2000, texts, "exact", rounds=1)
    assert set(exact) == {"ranking"} and exact["ranking"]["candidates_median"] == 2000


def test_a_real_server_answers_the_benchmark_client(settings: Settings, engine: Engine) -> None:
    env = {
        "FAQBOT_CORPUS_DIR": str(settings.corpus_dir),
        "FAQBOT_INDEX_DIR": str(settings.index_dir),
        "FAQBOT_MODEL": settings.model,
        "FAQBOT_QUERY_LOG": "false",
        "FAQBOT_RATE_LIMIT": "off",
    }
    with serving(env) as server:
        assert Client(server.port).ask("カスハラって何ですか") > 0
        figures = one_client(server.port, ["カスハラって何ですか", "セミナーの資料はもらえますか"], 2)
        assert set(figures) == {"p50_ms", "p95_ms", "p99_ms"}
        assert 0 < figures["p50_ms"]["min"] <= figures["p50_ms"]["median"] <= figures["p50_ms"]["max"]
        assert 50 < server.rss_mib() < 4000


def test_bench_refuses_bad_sizes() -> None:
    result = CliRunner().invoke(app, ["bench", "--sizes", "20,lots"], env={**os.environ})
    assert isinstance(result.exception, FaqbotError)
    assert "--sizes" in str(result.exception)
