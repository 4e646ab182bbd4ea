"""Which kind of FAISS index holds a corpus's rows: exact up to a number of rows
(FAQBOT_EXACT_SEARCH_MAX_ROWS), HNSW above it.

Ranking on an exact index reads every row, a cost that grows with the corpus; on HNSW,
ranking scores only the entries the graph and BM25 point to (bot.candidates). The
parameters below give recall@10 of at least 0.99 against exact search, both on sentence
embeddings of a real FAQ and on the benchmark's synthetic 300,000 rows (`python -m bot
bench` reports it); efConstruction matters most on real embeddings, whose nearest rows
lie close together. The rows' vectors stay in either kind, so the retriever still
computes exact cosines for the entries it scores. The manifest records the kind and
its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import faiss
import numpy as np

SearchKind = Literal["exact", "hnsw"]
# Neighbours per node, and the candidate lists kept while building and while searching.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128


def kind_for(rows: int, exact_max_rows: int | None) -> SearchKind:
    """Exact up to `exact_max_rows` rows (always, when None)."""
    return "exact" if exact_max_rows is None or rows <= exact_max_rows else "hnsw"


def new_index(vectors: np.ndarray, kind: SearchKind) -> faiss.Index:
    """An inner-product index of normalized vectors, of the given kind."""
    index: faiss.Index
    if kind == "exact":
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        index = hnsw
    index.add(vectors)
    return index


def describe(kind: SearchKind) -> dict[str, object]:
    """What the manifest records of an index of this kind."""
    if kind == "exact":
        return {"kind": "exact"}
    return {"kind": "hnsw", "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}


def kind_of(index: faiss.Index) -> SearchKind:
    return "hnsw" if isinstance(index, faiss.IndexHNSW) else "exact"


def recorded_kind(manifest: Mapping[str, object]) -> SearchKind:
    """The kind a manifest records; an index built before the manifest said is exact."""
    search = manifest.get("search")
    return "hnsw" if isinstance(search, dict) and search.get("kind") == "hnsw" else "exact"


def prepare_loaded(index: faiss.Index, manifest: Mapping[str, object]) -> None:
    """Search a loaded HNSW index as it was built to be searched: the manifest's efSearch,
    not whatever the file or the library's default holds."""
    search = manifest.get("search")
    if isinstance(index, faiss.IndexHNSW) and isinstance(search, dict):
        index.hnsw.efSearch = int(search.get("ef_search", HNSW_EF_SEARCH))
