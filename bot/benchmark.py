"""Evaluate the retrieval engine on any FAQ set in a BEIR-like JSON format.

corpus.json maps id -> entry, either {"question": …, "answer": …} or the string
"Question: …\nAnswer: …"; queries.json maps id -> query; qrels.json maps query id ->
{entry id: grade >= 1}. The entries get a throw-away index built with the current
settings (or one kept in a folder of its own, reused while it matches), and queries are
ranked by the same Retriever and runtime the service uses.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bot.config import Settings
from bot.corpus import Contacts, Corpus, Entry
from bot.embed.base import Embedder
from bot.engine import build_retriever, ensure_index, use_runtime
from bot.errors import FaqbotError
from bot.index import FaqIndex, expected_manifest, load_index
from bot.metrics import Qrels, evaluate
from bot.text import TextProcessor

BENCHMARK_CATEGORY = "benchmark"


class BenchmarkError(FaqbotError):
    """A benchmark file is missing or not in the expected format."""


def _read_json(path: Path, what: str) -> dict[str, object]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: {what} file not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f"{path}: the {what} file must be a JSON object mapping ids to values")
    return data


def _split_entry(doc_id: str, value: object, path: Path) -> tuple[str, str]:
    if isinstance(value, dict):
        question, answer = value.get("question"), value.get("answer")
    elif isinstance(value, str):
        head, sep, tail = value.partition("\nAnswer:")
        question = head.removeprefix("Question:").strip()
        answer = tail.strip() if sep else ""
    else:
        question = answer = None
    if not isinstance(question, str) or not isinstance(answer, str) or not question.strip():
        raise BenchmarkError(f"{path}: entry {doc_id!r} needs a question and an answer")
    return question.strip(), answer.strip() or question.strip()


def load_benchmark(corpus_path: Path, queries_path: Path, qrels_path: Path) -> tuple[Corpus, dict[str, str], Qrels]:
    raw_corpus = _read_json(corpus_path, "corpus")
    entries = []
    for doc_id, value in raw_corpus.items():
        question, answer = _split_entry(doc_id, value, corpus_path)
        entries.append(Entry.model_construct(id=doc_id, category=BENCHMARK_CATEGORY, question=question, answer=answer, alternates=()))
    queries = load_queries(queries_path)
    qrels: dict[str, dict[str, int]] = {}
    for qid, grades in _read_json(qrels_path, "qrels").items():
        if not isinstance(grades, dict):
            raise BenchmarkError(f"{qrels_path}: query {qid!r} must map entry ids to grades")
        qrels[str(qid)] = {str(d): int(g) for d, g in grades.items()}
    corpus = Corpus(
        entries=tuple(entries),
        categories=(BENCHMARK_CATEGORY,),
        synonyms=(),
        contacts=Contacts(),
        content_hash=_entries_hash(entries),
    )
    return corpus, queries, qrels


def load_queries(path: Path) -> dict[str, str]:
    """queries.json: id -> query; blank or non-text queries are left out."""
    return {str(k): v for k, v in _read_json(path, "queries").items() if isinstance(v, str) and v.strip()}


def _entries_hash(entries: list[Entry]) -> str:
    """What the index manifest records, so a kept benchmark index is never reused for another corpus."""
    payload = json.dumps([[e.id, e.question, e.answer] for e in entries], ensure_ascii=False)
    return "benchmark:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def select_ids(queries: Mapping[str, str], which: str) -> dict[str, str]:
    """All queries, or those whose numeric id is odd (for tuning) or even (held out)."""
    if which == "all":
        return dict(queries)
    if which not in ("odd", "even"):
        raise BenchmarkError(f"--ids must be all, odd or even, not {which!r}")
    parity = 1 if which == "odd" else 0
    try:
        return {qid: q for qid, q in queries.items() if int(qid) % 2 == parity}
    except ValueError:
        raise BenchmarkError("--ids odd/even needs numeric query ids") from None


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def benchmark_index(
    settings: Settings,
    embedder: Embedder,
    corpus: Corpus,
    text: TextProcessor,
    index_dir: Path | None = None,
    progress: Callable[[str], None] = _to_stderr,
) -> FaqIndex:
    """An index for the benchmark corpus, served by the runtime the settings name, as the
    service would serve it. With `index_dir` it is kept there and reused by later runs
    while corpus, model and settings match: adapting to a large corpus takes minutes, and
    the odd and even query halves rank against the same index. Otherwise it is built in a
    temporary folder beside the service's index (sharing the base model's exports) and
    removed once loaded."""
    adaptation = settings.adaptation
    n = len(corpus.entries)
    building = f"adapting the model to {n} entries and embedding them …" if adaptation else f"embedding {n} entries …"
    if index_dir is not None:
        progress(f"{building} (unless {index_dir} holds a matching index)")
        return _loaded(settings.model_copy(update={"index_dir": index_dir}), embedder, corpus, text, progress)
    progress(building)
    parent = Path(settings.index_dir).parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".benchmark-", dir=parent) as folder:
        return _loaded(settings.model_copy(update={"index_dir": Path(folder)}), embedder, corpus, text, progress)


def _loaded(
    settings: Settings, embedder: Embedder, corpus: Corpus, text: TextProcessor, progress: Callable[[str], None]
) -> FaqIndex:
    """Build the index at settings.index_dir unless it matches, then load it and its models
    (into memory: the folder may go once this returns)."""
    if not ensure_index(settings, corpus, embedder, text):
        progress(f"reusing the index at {settings.index_dir}")
    faq_index = load_index(settings.index_dir, expected_manifest(corpus, embedder, settings.adaptation), embedder)
    use_runtime(settings, faq_index, embedder)
    return faq_index


def run_benchmark(
    settings: Settings,
    embedder: Embedder,
    corpus: Corpus,
    queries: Mapping[str, str],
    qrels: Qrels,
    progress: Callable[[str], None] = _to_stderr,
    index_dir: Path | None = None,
) -> dict[str, float]:
    """Rank every query and return the metrics plus the median query latency."""
    text = TextProcessor(corpus.synonyms)
    faq_index = benchmark_index(settings, embedder, corpus, text, index_dir, progress)
    retriever = build_retriever(settings, corpus, faq_index, text)
    run: dict[str, list[str]] = {}
    latencies = []
    for i, (qid, query) in enumerate(queries.items(), start=1):
        start = time.perf_counter()
        ranked = retriever.rank(query)
        latencies.append((time.perf_counter() - start) * 1000)
        run[qid] = [c.entry.id for c in ranked[:10]]
        if i % 100 == 0:
            progress(f"ranked {i}/{len(queries)} queries")
    metrics = evaluate(run, qrels)
    metrics["latency_p50_ms"] = statistics.median(latencies) if latencies else 0.0
    return metrics
