"""Build, check and load the FAISS index of FAQ fields, with its manifest.

Each entry contributes one row per field: its question and every alternate phrasing
(embedded as queries, so user questions are matched question-to-question), and its
answer (embedded as a passage). The manifest records what the vectors depend on; the
service refuses an index whose manifest does not match the corpus and model in use.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import faiss
import numpy as np

from bot.atomic import replace_folder
from bot.corpus import Corpus
from bot.embed.base import Embedder
from bot.errors import IndexMismatchError, IndexMissingError
from bot.text import TextProcessor, split_passage
from bot.types import EntryId

FORMAT_VERSION = 2
INDEX_FILE = "index.faiss"
ROWS_FILE = "rows.json"
MANIFEST_FILE = "manifest.json"
REBUILD_HINT = "rebuild it with `python -m bot build` (or `make run`)"
TOKYO = ZoneInfo("Asia/Tokyo")

FieldKind = Literal["question", "alternate", "answer", "chunk"]
# Long answers are also indexed in pieces of about this many characters: a question
# about one sentence of a long answer matches that sentence better than the whole.
CHUNK_CHARS = 150
ASKED_KINDS = frozenset({"question", "alternate"})


@dataclass(frozen=True)
class Row:
    entry_id: EntryId
    kind: FieldKind


@dataclass
class FaqIndex:
    """A loaded index: FAISS vectors and which entry field each row holds."""

    index: faiss.Index
    rows: list[Row]
    manifest: dict[str, object]


def field_rows(corpus: Corpus) -> list[tuple[Row, str]]:
    """Every indexed field of every entry, in a stable order."""
    out: list[tuple[Row, str]] = []
    for entry in corpus.entries:
        out.append((Row(entry.id, "question"), entry.question))
        out.extend((Row(entry.id, "alternate"), alt) for alt in entry.alternates)
        out.append((Row(entry.id, "answer"), entry.answer))
        chunks = split_passage(entry.answer, CHUNK_CHARS)
        if len(chunks) > 1:
            out.extend((Row(entry.id, "chunk"), chunk) for chunk in chunks)
    return out


def expected_manifest(corpus: Corpus, embedder: Embedder) -> dict[str, object]:
    """The parts of a manifest that must match for an index to be usable."""
    return {
        "format": FORMAT_VERSION,
        "corpus_hash": corpus.content_hash,
        "model": embedder.fingerprint(),
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


def build_index(corpus: Corpus, embedder: Embedder, text: TextProcessor) -> FaqIndex:
    """Embed every field into an exact inner-product index (vectors are normalized)."""
    rows = field_rows(corpus)
    vectors = embed_fields(rows, embedder, text)
    index = faiss.IndexFlatIP(embedder.dim)
    index.add(vectors)
    manifest = {
        **expected_manifest(corpus, embedder),
        "entries": len(corpus.entries),
        "rows": len(rows),
        "libraries": _library_versions(),
        "built_at": dt.datetime.now(TOKYO).isoformat(timespec="seconds"),
    }
    return FaqIndex(index=index, rows=[row for row, _ in rows], manifest=manifest)


def save_index(faq_index: FaqIndex, folder: Path) -> None:
    """Write atomically, so a crash mid-write never leaves a half-written index where
    the service looks."""

    def fill(tmp: Path) -> None:
        faiss.write_index(faq_index.index, str(tmp / INDEX_FILE))
        rows = [{"entry_id": r.entry_id, "kind": r.kind} for r in faq_index.rows]
        (tmp / ROWS_FILE).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
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
        "dim": "vector dimension",
    }
    for key, label in labels.items():
        if manifest.get(key) != expected[key]:
            reasons.append(label)
    return reasons


def load_index(folder: Path, expected: dict[str, object]) -> FaqIndex:
    """Load the index, refusing one that is missing, incomplete or stale."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise IndexMissingError(f"no index at {folder}: {REBUILD_HINT}")
    reasons = mismatches(manifest, expected)
    if reasons:
        raise IndexMismatchError(
            f"the index at {folder} does not match the current {', '.join(reasons)}: {REBUILD_HINT}"
        )
    try:
        index = faiss.read_index(str(folder / INDEX_FILE))
        rows = [Row(r["entry_id"], r["kind"]) for r in json.loads((folder / ROWS_FILE).read_text("utf-8"))]
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise IndexMismatchError(f"the index at {folder} is damaged ({exc}): {REBUILD_HINT}") from exc
    if index.ntotal != len(rows) or index.d != expected["dim"]:
        raise IndexMismatchError(f"the index at {folder} is inconsistent: {REBUILD_HINT}")
    return FaqIndex(index=index, rows=rows, manifest=manifest)


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("faiss-cpu", "sentence-transformers", "transformers", "torch", "fugashi", "unidic-lite", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
