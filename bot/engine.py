"""Assemble the query path from settings: corpus, model, index, retriever, answerer.

Loading the model and index is the slow part (seconds), so it happens once per process
and the result is shared by the API, the channels and the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot.answer import Answerer, Calibration, DecisionPolicy
from bot.atomic import staging_folder
from bot.config import Settings
from bot.corpus import Corpus, load_corpus
from bot.desk import Desk
from bot.embed.base import Embedder
from bot.embed.onnx_runtime import TokenInputs
from bot.embed.sentence_transformer import SentenceTransformerEmbedder, has_weights
from bot.errors import IndexMismatchError, ModelError
from bot.index import (
    MODEL_FOLDER,
    REBUILD_HINT,
    FaqIndex,
    OnnxBuild,
    build_index,
    expected_manifest,
    load_index,
    mismatches,
    onnx_exports,
    onnx_ready,
    read_manifest,
    prepare_runtime,
    runtime_folder,
    save_index,
)
from bot.memory import release_free_heap
from bot.retrieve import FusionWeights, Retriever
from bot.search_index import kind_for, recorded_kind
from bot.text import TextProcessor
from bot.triage import SafetyMargins, Triage, build_triage, load_triage_corpus

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """Everything a query needs, loaded once."""

    settings: Settings
    corpus: Corpus
    embedder: Embedder
    text: TextProcessor
    faq_index: FaqIndex
    retriever: Retriever
    answerer: Answerer

    @property
    def index_built_at(self) -> str | None:
        """When the index in use was built: logged with each ask and shown by /readyz."""
        built_at = self.faq_index.manifest.get("built_at")
        return None if built_at is None else str(built_at)


def load_embedder(settings: Settings) -> Embedder:
    """The base model. On ONNX Runtime its PyTorch weights are loaded only if a build
    needs them; on PyTorch at once, so a broken model fails at start-up."""
    embedder = SentenceTransformerEmbedder(
        settings.model, query_prefix=settings.query_prefix, passage_prefix=settings.passage_prefix
    )
    if settings.runtime == "torch":
        embedder.load_weights()
    return embedder


def fusion_weights(settings: Settings) -> FusionWeights:
    return FusionWeights(
        settings.weight_question,
        settings.weight_answer,
        settings.weight_chunk,
        settings.weight_lexical,
        settings.weight_reading,
        settings.weight_base_question,
        settings.weight_base_chunk,
    )


def build_retriever(settings: Settings, corpus: Corpus, faq_index: FaqIndex, text: TextProcessor) -> Retriever:
    """The retriever with the ranking settings in force, as the service and the benchmark use it."""
    return Retriever.for_corpus(
        corpus, faq_index, text, fusion_weights(settings), respell_kana=settings.respell_kana, cache_size=settings.cache_size
    )


def calibration(settings: Settings) -> Calibration:
    w = settings.calibration_weights
    return Calibration(weights=(w[0], w[1], w[2], w[3], w[4], w[5]), bias=settings.calibration_bias)


def other_language_calibration(settings: Settings) -> Calibration:
    w = settings.calibration_weights_other_languages
    return Calibration(weights=(w[0], w[1], w[2], w[3], w[4], w[5]), bias=settings.calibration_bias_other_languages)


def decision_policy(settings: Settings) -> DecisionPolicy:
    return DecisionPolicy(settings.answer_threshold, settings.suggest_threshold, settings.max_suggestions)


def ensure_index(
    settings: Settings, corpus: Corpus, embedder: Embedder, text: TextProcessor, *, force: bool = False
) -> bool:
    """Build the index when it is missing, stale, not the kind its size calls for, or lacks
    what the runtime in use serves from (or always, with `force`); True when built.
    `embedder` is the base model; the index keeps its own adapted copy."""
    manifest = read_manifest(settings.index_dir)
    expected = expected_manifest(corpus, embedder, settings.adaptation)
    onnx = settings.runtime == "onnx"
    if not force and manifest is not None and not mismatches(manifest, expected):
        rows = manifest.get("rows")
        wanted = kind_for(rows if isinstance(rows, int) else 0, settings.exact_search_max_rows)
        if recorded_kind(manifest) != wanted:
            log.info("the index at %s is not %s as FAQBOT_EXACT_SEARCH_MAX_ROWS asks: rebuilding it", settings.index_dir, wanted)
        elif onnx and onnx_ready(settings.index_dir, embedder, manifest):
            return False
        elif not onnx and (not manifest.get("adaptation") or has_weights(settings.index_dir / MODEL_FOLDER)):
            return False
        else:
            log.info("the index at %s lacks what %s serves from: rebuilding it", settings.index_dir, settings.runtime)
    if not onnx:
        built = build_index(corpus, embedder, text, settings.adaptation, exact_max_rows=settings.exact_search_max_rows)
        save_index(built, settings.index_dir)
        return True
    shared = prepare_runtime(settings.index_dir, embedder)
    with staging_folder(shared.parent) as staging:
        faq_index = build_index(
            corpus,
            embedder,
            text,
            settings.adaptation,
            OnnxBuild(shared, staging),
            exact_max_rows=settings.exact_search_max_rows,
        )
        save_index(faq_index, settings.index_dir, export_onnx=True)
    return True


def build_for(settings: Settings, force: bool = False) -> bool:
    """Read the corpus and build its index if needed, from settings alone: the entry point
    of a build in a child process, which keeps PyTorch out of a serving process."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    corpus = load_corpus(settings.corpus_dir)
    return ensure_index(settings, corpus, load_embedder(settings), TextProcessor(corpus.synonyms), force=force)


def use_runtime(settings: Settings, faq_index: FaqIndex, base: Embedder) -> None:
    """Embed queries with ONNX Runtime from the index's exports when settings ask for it;
    an index without them (built with FAQBOT_RUNTIME=torch) is served by PyTorch."""
    on_onnx = settings.runtime == "onnx" and onnx_ready(settings.index_dir, base, faq_index.manifest)
    if settings.runtime == "onnx" and not on_onnx:
        log.warning(
            "%s: no ONNX export; queries are embedded by PyTorch (rebuild with `python -m bot build --force`)",
            settings.index_dir,
        )
    if not on_onnx:
        for model, _ in onnx_exports(settings.index_dir, faq_index):
            if isinstance(model, SentenceTransformerEmbedder):
                try:
                    model.load_weights()  # a missing or broken model fails at start-up, not at the first question
                except ModelError as exc:
                    if model is base:
                        raise
                    raise IndexMismatchError(
                        f"the index at {settings.index_dir} keeps no PyTorch weights of its adapted model "
                        f"(it was built for ONNX Runtime): {REBUILD_HINT}"
                    ) from exc
        return
    inputs = TokenInputs(runtime_folder(settings.index_dir, base))
    for model, path in onnx_exports(settings.index_dir, faq_index):
        if isinstance(model, SentenceTransformerEmbedder):
            model.use_onnx(path, inputs, threads=settings.runtime_threads, window_ms=settings.batch_window_ms)


def assemble(settings: Settings, corpus: Corpus, faq_index: FaqIndex, text: TextProcessor | None = None) -> Engine:
    """Wire already-loaded parts together (tests use this with in-memory indexes).
    Queries are embedded by the index's own model, adapted or not."""
    text = text or TextProcessor(corpus.synonyms)
    retriever = build_retriever(settings, corpus, faq_index, text)
    answerer = Answerer(
        retriever,
        Desk(corpus.contacts),
        calibration(settings),
        decision_policy(settings),
        triage=load_triage(settings, faq_index, corpus),
        smalltalk_similarity=settings.smalltalk_similarity,
        other_languages=other_language_calibration(settings),
    )
    return Engine(settings, corpus, faq_index.embedder, text, faq_index, retriever, answerer)


def load_triage(settings: Settings, faq_index: FaqIndex, corpus: Corpus) -> Triage | None:
    """Small talk and safety from corpus/, their examples embedded by the model triage
    reads messages with: the base model when the index keeps one, as the retriever does.
    The FAQ's questions and the known unanswered ones are the classifier's everyday calm
    messages."""
    triage_corpus = load_triage_corpus(settings.corpus_dir)
    if triage_corpus is None:
        log.warning("corpus has no smalltalk.yaml, safety.yaml or languages.yaml: no small talk or urgent replies")
        return None
    embedder = faq_index.base_embedder
    margins = SafetyMargins(
        settings.urgent_margin,
        settings.urgent_danger_margin,
        settings.crisis_margin,
        settings.urgent_floor,
        settings.urgent_probability,
        settings.crisis_probability,
    )
    # The base model's runtime folder keeps the examples' vectors for the next start.
    cache = runtime_folder(settings.index_dir, embedder)
    return build_triage(triage_corpus, embedder, margins, calm_texts(corpus), cache_dir=cache)


def calm_texts(corpus: Corpus) -> list[str]:
    """Everyday messages to the desk: the FAQ's questions and alternates, and the questions
    it does not answer."""
    return [*(q for e in corpus.entries for q in (e.question, *e.alternates)), *(u.query for u in corpus.unanswered)]


def load_engine(settings: Settings, embedder: Embedder | None = None) -> Engine:
    """Load corpus, model and index from disk, refusing a stale index; `embedder` is
    the base model (loaded from settings when not given)."""
    corpus = load_corpus(settings.corpus_dir)
    missing = corpus.contacts.missing()
    if missing:
        log.warning(
            "corpus/contacts.yaml: %s unset; the fallback names the desk without a number or link. "
            "Fill them in from the desk's official page.",
            ", ".join(missing),
        )
    if not corpus.unanswered and settings.calibration_weights[5]:
        log.warning(
            "corpus/unanswered.yaml lists no questions, but the confidence model weighs the similarity to them: "
            "confidences will run high. Add the questions the desk does not answer and refit with "
            "scripts/tune_decision.py, or set the last of FAQBOT_CALIBRATION_WEIGHTS to 0 and refit."
        )
    embedder = embedder or load_embedder(settings)
    expected = expected_manifest(corpus, embedder, settings.adaptation)
    faq_index = load_index(settings.index_dir, expected, embedder)
    use_runtime(settings, faq_index, embedder)
    engine = assemble(settings, corpus, faq_index)
    release_free_heap()  # what loading freed stays in the heap otherwise (bot.memory)
    return engine
