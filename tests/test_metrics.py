"""Ranking metrics against values computed by hand, and eval-retrieval on a tiny fixture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.benchmark import BenchmarkError, load_benchmark, select_ids
from bot.cli import app
from bot.config import Settings
from bot.engine import Engine
from bot.metrics import METRIC_KEYS, evaluate

DATA = Path(__file__).parent / "data" / "tiny_bench"


def test_metrics_by_hand() -> None:
    qrels = {"1": {"a": 2}, "2": {"b": 1, "a": 1}, "3": {"c": 1}, "4": {}}
    run = {"1": ["a", "b", "c"], "2": ["c", "b", "d", "a"], "3": ["d", "a"], "4": ["a"]}
    m = evaluate(run, qrels)
    # q2: DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    ndcg_q2 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((1 + ndcg_q2 + 0) / 3)
    assert m["recall@10"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["map@10"] == pytest.approx((1 + (1 / 2 + 2 / 4) / 2 + 0) / 3)
    assert m["p@5"] == pytest.approx((1 / 5 + 2 / 5 + 0) / 3)
    assert m["hit@1"] == pytest.approx(1 / 3)


def test_cutoff_ignores_hits_below_rank_ten() -> None:
    ranked = [str(i) for i in range(20)]
    m = evaluate({"q": ranked}, {"q": {"15": 1}})
    assert m["ndcg@10"] == m["recall@10"] == m["mrr@10"] == m["hit@1"] == 0.0


def test_benchmark_files_in_both_corpus_forms() -> None:
    corpus, queries, qrels = load_benchmark(DATA / "corpus.json", DATA / "queries.json", DATA / "qrels.json")
    b = corpus.entry("b")
    assert b.question == "専門家派遣の申込方法を教えてください"
    assert b.answer == "申込フォームからお申し込みください。"
    assert set(queries) == {"1", "2", "3"} and qrels["2"] == {"b": 1, "a": 1}
    assert set(select_ids(queries, "odd")) == {"1", "3"} and set(select_ids(queries, "even")) == {"2"}


def test_benchmark_corpus_hash_follows_its_content(tmp_path: Path) -> None:
    files = [DATA / "queries.json", DATA / "qrels.json"]
    corpus = load_benchmark(DATA / "corpus.json", *files)[0]
    assert load_benchmark(DATA / "corpus.json", *files)[0].content_hash == corpus.content_hash
    raw = json.loads((DATA / "corpus.json").read_text(encoding="utf-8"))
    raw["b"] = "Question: 専門家派遣の申込方法を教えてください\nAnswer: 電話でお申し込みください。"
    (tmp_path / "corpus.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    assert load_benchmark(tmp_path / "corpus.json", *files)[0].content_hash != corpus.content_hash


def test_bad_benchmark_file_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"x": 5}', encoding="utf-8")
    with pytest.raises(BenchmarkError, match="entry 'x' needs a question"):
        load_benchmark(tmp_path / "c.json", DATA / "queries.json", DATA / "qrels.json")
    with pytest.raises(BenchmarkError, match="not found"):
        load_benchmark(tmp_path / "none.json", DATA / "queries.json", DATA / "qrels.json")


def test_eval_retrieval_cli_prints_metrics_and_a_json_last_line(settings: Settings, engine: Engine) -> None:
    # Built beside the session's index, with its base-model exports, and removed after.
    env = {"FAQBOT_MODEL": settings.model, "FAQBOT_LOG_LEVEL": "WARNING", "FAQBOT_INDEX_DIR": str(settings.index_dir)}
    args = ["eval-retrieval", "--corpus", str(DATA / "corpus.json"), "--queries", str(DATA / "queries.json"),
            "--qrels", str(DATA / "qrels.json")]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {*METRIC_KEYS, "latency_p50_ms"}
    assert last["hit@1"] == 1.0  # three easy queries, each with an obvious entry
    assert 0.0 < last["ndcg@10"] <= 1.0 and last["latency_p50_ms"] > 0


def test_eval_retrieval_keeps_and_reuses_its_index(settings: Settings, beside_session: Path) -> None:
    tmp_path = beside_session
    env = {"FAQBOT_MODEL": settings.model, "FAQBOT_LOG_LEVEL": "WARNING", "FAQBOT_ADAPT_EPOCHS": "1"}
    args = ["eval-retrieval", "--corpus", str(DATA / "corpus.json"), "--queries", str(DATA / "queries.json"),
            "--qrels", str(DATA / "qrels.json"), "--index-dir", str(tmp_path / "bench")]
    first = CliRunner().invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    built_at = json.loads((tmp_path / "bench" / "manifest.json").read_text())["built_at"]
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 0, again.output
    assert "reusing the index" in again.stderr
    assert json.loads((tmp_path / "bench" / "manifest.json").read_text())["built_at"] == built_at
    assert _ranking_metrics(again.stdout) == _ranking_metrics(first.stdout)
    other = CliRunner().invoke(app, args, env={**env, "FAQBOT_ADAPT_EPOCHS": "2"})
    assert other.exit_code == 0, other.output
    assert "reusing the index" not in other.stderr, "other adaptation settings build anew"


def _ranking_metrics(stdout: str) -> dict[str, float]:
    last = json.loads(stdout.strip().splitlines()[-1])
    return {k: v for k, v in last.items() if k != "latency_p50_ms"}
