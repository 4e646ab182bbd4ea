"""Build, check and load the FAISS index of FAQ fields, with its manifest.

Each entry contributes one row per field: its question and every alternate phrasing,
and their kana spellings (embedded as queries, so user questions are matched
question-to-question), and its answer and the answer's pieces (embedded as passages).
When adaptation is on, the model is first fine-tuned on the corpus (bot.embed.adapt) and
the adapted copy is saved inside the index folder: vectors and the model that embeds
queries against them are written, and replaced, together. The base model's vectors of
the same rows are kept beside them, because the fine-tune trades away some of what the
general model knew and ranking uses both. The questions the FAQ is known not to answer
(corpus/unanswered.yaml) are embedded by the same model into their own small index, for
the decision step. Up to FAQBOT_EXACT_SEARCH_MAX_ROWS rows the fields' indexes are
exact; above, HNSW (bot.search_index). The manifest records what the vectors depend
on, and the kind of index; the service refuses an index whose manifest does not match
the corpus, base model and settings in use.

For ONNX Runtime, the adapted model is exported into the index folder without its word
embeddings (never trained, so shared with the base model) and with no PyTorch copy.
What the base model contributes to every build (tokenizer, word-embedding table and its
own export) is written once per base model beside the index folder, in
`runtime/<fingerprint>/`, and reused by later builds. Such a build embeds its rows
through the same exports on every core: the vectors are the ones the service will
compare queries against, and PyTorch is needed only to adapt and export the model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import faiss
import numpy as np

from bot.atomic import replace_folder
from bot.corpus import Corpus
from bot.embed.adapt import AdaptOptions, adapt, training_pairs
from bot.embed.base import Embedder
from bot.embed.onnx_runtime import TokenInputs, has_token_inputs, save_token_inputs
from bot.embed.sentence_transformer import SentenceTransformerEmbedder
from bot.errors import IndexMismatchError, IndexMissingError, ModelError
from bot.search_index import describe, kind_for, kind_of, new_index, prepare_loaded, recorded_kind
from bot.text import TextProcessor, split_passage
from bot.types import EntryId

FORMAT_VERSION = 7
INDEX_FILE = "index.faiss"
BASE_INDEX_FILE = "base.faiss"
UNANSWERED_INDEX_FILE = "unanswered.faiss"
ROWS_FILE = "rows.json"
MANIFEST_FILE = "manifest.json"
MODEL_FOLDER = "model"
MODEL_ONNX_FILE = "model.onnx"
BASE_ONNX_FILE = "base.onnx"
RUNTIME_FOLDER = "runtime"
REBUILD_HINT = "rebuild it with `python -m bot build` (or `make run`)"
TOKYO = ZoneInfo("Asia/Tokyo")

FieldKind = Literal["question", "alternate", "kana", "answer", "chunk"]
# Long answers are also indexed in pieces of about this many characters: a question
# about one sentence of a long answer matches that sentence better than the whole.
CHUNK_CHARS = 150
ASKED_KINDS = frozenset({"question", "alternate", "kana"})
# The fields as the FAQ writes them, for lexical matching (kana and chunks repeat them).
WRITTEN_KINDS = frozenset({"question", "alternate", "answer"})


@dataclass(frozen=True)
class Row:
    entry_id: EntryId
    kind: FieldKind


@dataclass(frozen=True)
class ModelVectors:
    """The rows as one model embeds them, and that model, which must embed the queries."""

    index: faiss.Index
    embedder: Embedder


@dataclass
class FaqIndex:
    """A loaded index: FAISS vectors and which entry field each row holds."""

    index: faiss.Index
    rows: list[Row]
    manifest: dict[str, object]
    embedder: Embedder
    """The model the vectors were made with (adapted when adaptation is on)."""
    unanswered: faiss.Index
    """The known unanswered questions, in corpus order, embedded as queries by `embedder`."""
    base: ModelVectors | None = None
    """The unadapted model's vectors of the same rows; None when there was no adaptation."""
    graph: Path | None = None
    """The adapted model's ONNX export, when the build made one to embed the rows."""

    @property
    def base_embedder(self) -> Embedder:
        """The unadapted model: the base's when the index keeps one, else its own."""
        return self.base.embedder if self.base is not None else self.embedder


def field_rows(corpus: Corpus, text: TextProcessor) -> list[tuple[Row, str]]:
    """Every indexed field of every entry, in a stable order."""
    out: list[tuple[Row, str]] = []
    for entry in corpus.entries:
        asked = [(Row(entry.id, "question"), entry.question)]
        asked += [(Row(entry.id, "alternate"), alt) for alt in entry.alternates]
        out.extend(asked)
        for _, field in asked:
            kana = text.kana_spelling(field)
            if kana != text.fold(field):
                out.append((Row(entry.id, "kana"), kana))
        out.append((Row(entry.id, "answer"), entry.answer))
        chunks = split_passage(entry.answer, CHUNK_CHARS)
        if len(chunks) > 1:
            out.extend((Row(entry.id, "chunk"), chunk) for chunk in chunks)
    return out


def expected_manifest(corpus: Corpus, embedder: Embedder, adaptation: AdaptOptions | None) -> dict[str, object]:
    """The parts of a manifest that must match for an index to be usable; `embedder`
    is the base model, before any adaptation."""
    return {
        "format": FORMAT_VERSION,
        "corpus_hash": corpus.content_hash,
        "model": embedder.fingerprint(),
        "adaptation": adaptation.as_manifest() if adaptation else None,
        "dim": embedder.dim,
    }


def embed_fields(rows: list[tuple[Row, str]], embedder: Embedder, text: TextProcessor) -> np.ndarray:
    """Questions and alternates as queries (matched question to question), answers
    and their chunks as passages, in row order."""
    vectors = np.zeros((len(rows), embedder.dim), dtype=np.float32)
    asked = [i for i, (row, _) in enumerate(rows) if row.kind in ASKED_KINDS]
    answered = [i for i, (row, _) in enumerate(rows) if row.kind not in ASKED_KINDS]
    if asked:
        vectors[asked] = embedder.embed_queries([text.fold(rows[i][1]) for i in asked])
    if answered:
        vectors[answered] = embedder.embed_passages([text.fold(rows[i][1]) for i in answered])
    return vectors


@dataclass(frozen=True)
class OnnxBuild:
    """Embed a build's rows through ONNX Runtime: the base model's shared folder
    (prepare_runtime) and a folder the build may write the adapted model's export to."""

    runtime: Path
    staging: Path

    def runner(self, model: SentenceTransformerEmbedder, graph: Path) -> Embedder:
        """`model`'s prefixes around the ONNX graph at `graph`, on every core."""
        fast = model.unloaded(model.model_id)
        fast.use_onnx(graph, TokenInputs(self.runtime), threads=len(os.sched_getaffinity(0)))
        return fast


def build_index(
    corpus: Corpus,
    embedder: Embedder,
    text: TextProcessor,
    adaptation: AdaptOptions | None = None,
    onnx: OnnxBuild | None = None,
    *,
    exact_max_rows: int | None = None,
) -> FaqIndex:
    """Embed every field into an inner-product index (vectors are normalized), exact up
    to `exact_max_rows` rows (always, when None) and HNSW above, with the model adapted
    to the corpus first when `adaptation` is given; through ONNX Runtime when `onnx` is
    given."""
    manifest = expected_manifest(corpus, embedder, adaptation)
    rows = field_rows(corpus, text)
    kind = kind_for(len(rows), exact_max_rows)
    runs = embedder
    if onnx is not None:
        if not isinstance(embedder, SentenceTransformerEmbedder):
            raise ModelError(f"cannot run {embedder.model_id!r} on ONNX Runtime: not a sentence-transformers model")
        runs = onnx.runner(embedder, onnx.runtime / BASE_ONNX_FILE)
    vectors = new_index(embed_fields(rows, runs, text), kind)
    base, graph = None, None
    if adaptation is not None:
        if not isinstance(embedder, SentenceTransformerEmbedder):
            raise ModelError(
                f"adapting needs a sentence-transformers model, not {embedder.model_id!r}; "
                "set FAQBOT_ADAPT_EPOCHS=0 to use it as it is"
            )
        base = ModelVectors(vectors, embedder)
        embedder = adapt(embedder, training_pairs(corpus, text), adaptation)
        runs = embedder
        if onnx is not None and isinstance(embedder, SentenceTransformerEmbedder):
            graph = onnx.staging / MODEL_ONNX_FILE
            embedder.export_onnx(graph, TokenInputs(onnx.runtime))
            runs = onnx.runner(embedder, graph)
        vectors = new_index(embed_fields(rows, runs, text), kind)
    unanswered = new_index(
        runs.embed_queries([text.fold(u.query) for u in corpus.unanswered])
        if corpus.unanswered
        else np.zeros((0, embedder.dim), dtype=np.float32),
        "exact",
    )
    manifest |= {
        "entries": len(corpus.entries),
        "rows": len(rows),
        "search": describe(kind),
        "unanswered": len(corpus.unanswered),
        "libraries": _library_versions(),
        "built_at": dt.datetime.now(TOKYO).isoformat(timespec="seconds"),
    }
    return FaqIndex(
        index=vectors,
        rows=[row for row, _ in rows],
        manifest=manifest,
        embedder=embedder,
        unanswered=unanswered,
        base=base,
        graph=graph,
    )


def runtime_folder(index_dir: Path, base: Embedder) -> Path:
    """Where the base model's shared ONNX inputs and export live, beside the index folder."""
    digest = hashlib.sha256(json.dumps(base.fingerprint(), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(index_dir).parent / RUNTIME_FOLDER / digest


def onnx_files(index_dir: Path, base: Embedder, manifest: dict[str, object]) -> list[Path]:
    """The ONNX files that serve an index: the base model's export and shared inputs, and
    the adapted model's export when the model was adapted."""
    shared = runtime_folder(index_dir, base)
    files = [shared / BASE_ONNX_FILE]
    return files + [Path(index_dir) / MODEL_ONNX_FILE] if manifest.get("adaptation") else files


def _runtime_ready(folder: Path) -> bool:
    return has_token_inputs(folder) and (folder / BASE_ONNX_FILE).is_file()


def onnx_ready(index_dir: Path, base: Embedder, manifest: dict[str, object]) -> bool:
    return _runtime_ready(runtime_folder(index_dir, base)) and all(
        path.is_file() for path in onnx_files(index_dir, base, manifest)
    )


def onnx_exports(index_dir: Path, faq_index: FaqIndex) -> list[tuple[Embedder, Path]]:
    """Each model that embeds queries for this index, with the file of its ONNX export:
    the index's own model first, then the base model when the index keeps one."""
    files = onnx_files(index_dir, faq_index.base_embedder, faq_index.manifest)
    if faq_index.base is None:
        return [(faq_index.embedder, files[0])]
    return [(faq_index.embedder, files[1]), (faq_index.base.embedder, files[0])]


def prepare_runtime(index_dir: Path, base: Embedder) -> Path:
    """The base model's shared inputs and export, written once per base model."""
    folder = runtime_folder(index_dir, base)
    if _runtime_ready(folder):
        return folder
    if not isinstance(base, SentenceTransformerEmbedder):
        raise ModelError(f"cannot export {base.model_id!r} to ONNX: not a sentence-transformers model")

    def fill(tmp: Path) -> None:
        save_token_inputs(base.torch_model, tmp)
        base.export_onnx(tmp / BASE_ONNX_FILE, TokenInputs(tmp))

    return replace_folder(folder, fill)


def save_index(faq_index: FaqIndex, folder: Path, *, export_onnx: bool = False) -> None:
    """Write atomically, so a crash mid-write never leaves a half-written index where
    the service looks. With `export_onnx` the index is served by ONNX Runtime: the
    adapted model is written as an ONNX graph and no PyTorch weights are kept."""
    shared = prepare_runtime(folder, faq_index.base_embedder) if export_onnx else None

    def fill(tmp: Path) -> None:
        faiss.write_index(faq_index.index, str(tmp / INDEX_FILE))
        faiss.write_index(faq_index.unanswered, str(tmp / UNANSWERED_INDEX_FILE))
        rows = [{"entry_id": r.entry_id, "kind": r.kind} for r in faq_index.rows]
        (tmp / ROWS_FILE).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        if faq_index.manifest.get("adaptation"):
            if not isinstance(faq_index.embedder, SentenceTransformerEmbedder) or faq_index.base is None:
                raise ModelError(f"cannot save the adapted model {faq_index.embedder.model_id!r}")
            faiss.write_index(faq_index.base.index, str(tmp / BASE_INDEX_FILE))
            if shared is None:
                faq_index.embedder.save(tmp / MODEL_FOLDER)
            elif faq_index.graph is not None:
                shutil.copyfile(faq_index.graph, tmp / MODEL_ONNX_FILE)
            else:
                faq_index.embedder.export_onnx(tmp / MODEL_ONNX_FILE, TokenInputs(shared))
        (tmp / MANIFEST_FILE).write_text(
            json.dumps(faq_index.manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )

    replace_folder(folder, fill)


def read_manifest(folder: Path) -> dict[str, object] | None:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mismatches(manifest: dict[str, object], expected: dict[str, object]) -> list[str]:
    """Human-readable reasons why `manifest` cannot serve; empty when it can."""
    reasons = []
    labels = {
        "format": "index format",
        "corpus_hash": "corpus content (corpus/*.yaml changed)",
        "model": "embedding model or its prefixes",
        "adaptation": "model adaptation settings (FAQBOT_ADAPT_*)",
        "dim": "vector dimension",
    }
    for key, label in labels.items():
        if manifest.get(key) != expected[key]:
            reasons.append(label)
    return reasons


def load_index(folder: Path, expected: dict[str, object], embedder: Embedder) -> FaqIndex:
    """Load the index, refusing one that is missing, incomplete or stale; `embedder` is
    the base model, replaced by the index's own adapted copy when it has one."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise IndexMissingError(f"no index at {folder}: {REBUILD_HINT}")
    reasons = mismatches(manifest, expected)
    if reasons:
        raise IndexMismatchError(
            f"the index at {folder} does not match the current {', '.join(reasons)}: {REBUILD_HINT}"
        )
    base = None
    try:
        index = faiss.read_index(str(folder / INDEX_FILE))
        unanswered = faiss.read_index(str(folder / UNANSWERED_INDEX_FILE))
        rows = [Row(r["entry_id"], r["kind"]) for r in json.loads((folder / ROWS_FILE).read_text("utf-8"))]
        if manifest.get("adaptation"):
            base = ModelVectors(faiss.read_index(str(folder / BASE_INDEX_FILE)), embedder)
            embedder = _load_adapted(folder / MODEL_FOLDER, embedder)
    except (OSError, RuntimeError, ValueError, KeyError, ModelError) as exc:
        raise IndexMismatchError(f"the index at {folder} is damaged ({exc}): {REBUILD_HINT}") from exc
    indexes = [index] + ([base.index] if base else [])
    for i in indexes:
        prepare_loaded(i, manifest)
    if (
        any(i.ntotal != len(rows) or i.d != expected["dim"] or kind_of(i) != recorded_kind(manifest) for i in indexes)
        or embedder.dim != index.d
        or unanswered.d != index.d
        or unanswered.ntotal != manifest.get("unanswered")
    ):
        raise IndexMismatchError(f"the index at {folder} is inconsistent: {REBUILD_HINT}")
    return FaqIndex(index=index, rows=rows, manifest=manifest, embedder=embedder, unanswered=unanswered, base=base)


def _load_adapted(folder: Path, base: Embedder) -> Embedder:
    """The adapted model: PyTorch weights in `folder` (an index for FAQBOT_RUNTIME=torch),
    or, for ONNX Runtime, none, its graph beside the folder's place."""
    if not isinstance(base, SentenceTransformerEmbedder):
        raise ModelError(f"an adapted index needs a sentence-transformers base model, not {base.model_id!r}")
    if not folder.is_dir():
        return base.unloaded(str(folder))
    return SentenceTransformerEmbedder(
        str(folder), query_prefix=base.query_prefix, passage_prefix=base.passage_prefix
    )


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("faiss-cpu", "sentence-transformers", "transformers", "torch", "fugashi", "unidic-lite", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
