"""The CLI, through typer's runner, on the session's real model and index."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.engine import Engine
from bot.errors import FaqbotError

runner = CliRunner()


@pytest.fixture()
def env(settings: Settings, engine: Engine) -> dict[str, str]:
    return {
        "FAQBOT_CORPUS_DIR": str(settings.corpus_dir),
        "FAQBOT_INDEX_DIR": str(settings.index_dir),
        "FAQBOT_MODEL": settings.model,
        "FAQBOT_LOG_LEVEL": "WARNING",
    }


def test_ask_json_is_the_api_reply(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["ask", "カスハラって何ですか", "--json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["faq"]["id"] == "general-definition"
    assert set(body) >= {"ask_id", "answered", "answer", "faq", "confidence", "suggestions", "route"}


def test_build_reports_up_to_date(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["build"], env=env)
    assert result.exit_code == 0 and "up to date" in result.stdout


def test_build_force_rebuilds(env: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    # This checks when `build` builds, so on two entries without adaptation; the session
    # index covers the real corpus and adapting.
    small = tmp_path / "corpus"
    shutil.copytree(env["FAQBOT_CORPUS_DIR"], small)
    faq = yaml.safe_load((small / "faq.yaml").read_text(encoding="utf-8"))
    faq["entries"] = faq["entries"][:2]
    (small / "faq.yaml").write_text(yaml.safe_dump(faq, allow_unicode=True), encoding="utf-8")
    (small / "unanswered.yaml").write_text("questions: []\n", encoding="utf-8")
    local = {**env, "FAQBOT_CORPUS_DIR": str(small), "FAQBOT_INDEX_DIR": str(tmp_path / "faq"), "FAQBOT_ADAPT_EPOCHS": "0"}
    local["FAQBOT_RUNTIME"] = "torch"  # no ONNX export: a build of seconds
    assert "built index" in runner.invoke(app, ["build"], env=local).stdout
    assert "up to date" in runner.invoke(app, ["build"], env=local).stdout
    result = runner.invoke(app, ["build", "--force"], env=local)
    assert result.exit_code == 0 and "built index" in result.stdout


def test_eval_prints_the_metrics(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["eval"], env=env)
    assert result.exit_code == 0, result.output
    assert "split: test8" in result.stdout  # the default is the held-out set nobody has tuned on
    for label in ("in-domain top-1 accuracy", "out-of-scope routed to fallback", "latency per query: p50", "ECE"):
        assert label in result.stdout


def test_eval_of_an_unknown_split_is_refused(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["eval", "--split", "tset"], env=env)
    assert isinstance(result.exception, FaqbotError)
    assert "--split must be one of tune, test, test2, test3, test4, test5, test6, test7, test8 or all" in str(result.exception)


def test_eval_reports_routing_on_another_faqs_queries(env: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    queries = tmp_path / "queries.json"
    queries.write_text(
        json.dumps({"1": "明日の東京の天気は？", "2": "粗大ごみの出し方", "3": "「カスタマーハラスメント」の定義を教えてください。"}),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["eval", "--oos-queries", str(queries), "--ids", "odd"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("split:") == 1  # only that file, unless --split asks for eval.yaml too
    external = result.stdout.split("split: queries.json (odd ids)")[1]
    assert "(0 in-domain, 2 out-of-scope queries)" in external and "in-domain top-1" not in external
    # The FAQ's own question is answered, so only the weather query counts as routed.
    assert "out-of-scope routed to fallback:        50.0%" in external
    assert "expected fallback, got general-definition" in external


def test_eval_of_a_missing_queries_file_is_refused(env: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["eval", "--oos-queries", str(tmp_path / "nope.json")], env=env)
    assert isinstance(result.exception, FaqbotError) and "queries file not found" in str(result.exception)


def test_export_model_if_missing_is_a_no_op(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["export-model", "--if-missing"], env=env)
    assert result.exit_code == 0 and "already exported" in result.stdout


def test_bad_input_is_a_message_not_a_traceback(env: dict[str, str]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bot", "ask", "  "], check=False, env={**env, "PATH": ""}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: query: must not be empty" in done.stderr and "Traceback" not in done.stderr


def test_eval_reach_names_its_splits_for_an_unknown_one(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["eval-reach", "--split", "nope"], env=env)
    assert isinstance(result.exception, FaqbotError)
    assert "--split must be one of tune, test, test2, test3, test4, test5, test6, test7, test8, test9, test10, all, not 'nope'" in str(result.exception)
