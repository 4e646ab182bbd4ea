"""Load and validate the editable corpus folder (`corpus/*.yaml`).

The people who edit these files are not programmers, so every error names the file,
the entry and the field, and says what is wrong in plain words.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
)

from bot.errors import CorpusError
from bot.types import EntryId

FAQ_FILE = "faq.yaml"
CATEGORIES_FILE = "categories.yaml"
SYNONYMS_FILE = "synonyms.yaml"
CONTACTS_FILE = "contacts.yaml"
UNANSWERED_FILE = "unanswered.yaml"
EVAL_FILE = "eval.yaml"
# Files whose content changes the index; eval.yaml and contacts.yaml do not.
INDEXED_FILES = (FAQ_FILE, CATEGORIES_FILE, SYNONYMS_FILE, UNANSWERED_FILE)

_ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]


class Entry(Strict):
    """One FAQ entry; question and answer are verbatim from the desk's source."""

    id: EntryId
    category: str
    question: Text
    answer: Text
    alternates: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not _ID_PATTERN.match(value):
            raise ValueError("must be lowercase letters, digits and single hyphens, e.g. 'seminar-format'")
        return value

    @field_validator("alternates")
    @classmethod
    def _alternates_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, alt in enumerate(value):
            if not alt.strip():
                raise ValueError(f"item {i + 1} is empty")
        return value


class Unanswered(Strict):
    """A question people ask that the FAQ does not answer. `source` names who wrote it
    or when, so a fit can score each one as if it had never been seen (scripts/tune_decision.py)."""

    query: Text
    source: Text


class Hours(Strict):
    opens: dt.time | None = None
    closes: dt.time | None = None


class Contacts(Strict):
    """Where the fallback sends people; unset values are allowed but warned about."""

    form_url: str | None = None
    phone: str | None = None
    hours: Hours = Hours()

    def missing(self) -> list[str]:
        """Names of the settings still unset, for the start-up warning."""
        names = []
        if not self.form_url:
            names.append("form_url")
        if not self.phone:
            names.append("phone")
        if self.hours.opens is None or self.hours.closes is None:
            names.append("hours")
        return names


# Which part of corpus/eval.yaml an item belongs to (see the file's header). Settings are
# chosen on the tuning splits only; a held-out split joins them once its figures have been
# reported after changes, and a fresh one, written before any run, takes its place.
EvalSplit = Literal["tune", "test", "test2", "test3", "test4", "test5", "test6", "test7", "test8"]
EVAL_SPLITS: tuple[str, ...] = get_args(EvalSplit)
HELD_OUT_SPLIT = "test8"
TUNING_SPLITS: tuple[str, ...] = tuple(s for s in EVAL_SPLITS if s != HELD_OUT_SPLIT)

# The same for corpus/eval_reach.yaml (languages, small talk, safety).
ReachSplit = Literal["tune", "test", "test2", "test3", "test4", "test5", "test6", "test7", "test8", "test9", "test10"]
REACH_SPLITS: tuple[str, ...] = get_args(ReachSplit)
REACH_HELD_OUT_SPLIT = "test10"


class EvalQuery(Strict):
    query: str
    id: EntryId | None = None
    split: EvalSplit


@dataclass(frozen=True)
class Corpus:
    """The validated FAQ with everything the pipeline needs from the corpus folder."""

    entries: tuple[Entry, ...]
    categories: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]
    contacts: Contacts
    content_hash: str
    unanswered: tuple[Unanswered, ...] = ()

    def entry(self, entry_id: EntryId) -> Entry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(entry_id)


def load_corpus(folder: Path) -> Corpus:
    """Read and validate the corpus folder; raises CorpusError naming what to fix."""
    folder = Path(folder)
    if not (folder / FAQ_FILE).is_file():
        raise CorpusError(f"{folder / FAQ_FILE}: file not found (set FAQBOT_CORPUS_DIR to the corpus folder)")
    categories = _load_categories(folder / CATEGORIES_FILE)
    entries = _load_entries(folder / FAQ_FILE, categories)
    synonyms = _load_synonyms(folder / SYNONYMS_FILE)
    contacts = _load_contacts(folder / CONTACTS_FILE)
    return Corpus(
        entries=entries,
        categories=categories,
        synonyms=synonyms,
        contacts=contacts,
        content_hash=corpus_hash(folder),
        unanswered=_load_unanswered(folder / UNANSWERED_FILE),
    )


def corpus_hash(folder: Path) -> str:
    """Hash of the files that shape the index, so a stale index can be detected."""
    digest = hashlib.sha256()
    for name in INDEXED_FILES:
        path = Path(folder) / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()


def load_eval_set(folder: Path, corpus: Corpus) -> tuple[EvalQuery, ...]:
    """The labelled evaluation queries; out-of-scope ones have id None."""
    path = Path(folder) / EVAL_FILE
    data = read_yaml(path, required=True)
    known = {e.id for e in corpus.entries}
    items: list[EvalQuery] = []
    for section, needs_id in (("in_domain", True), ("out_of_scope", False)):
        raw = data.get(section)
        if not isinstance(raw, list):
            raise CorpusError(f"{path}: '{section}' must be a list")
        for i, item in enumerate(raw, start=1):
            where = f"{path}: {section} item {i}"
            q = validate(EvalQuery, item, where)
            if needs_id and q.id not in known:
                raise CorpusError(f"{where}: field 'id': unknown entry id {q.id!r}")
            if not needs_id and q.id is not None:
                raise CorpusError(f"{where}: field 'id': out-of-scope queries have no id")
            items.append(q)
    return tuple(items)


def _load_categories(path: Path) -> tuple[str, ...]:
    data = read_yaml(path, required=True)
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and c.strip() for c in cats):
        raise CorpusError(f"{path}: field 'categories' must be a non-empty list of names")
    return tuple(cats)


def _load_entries(path: Path, categories: tuple[str, ...]) -> tuple[Entry, ...]:
    data = read_yaml(path, required=True)
    raw = data.get("entries")
    if not isinstance(raw, list) or not raw:
        raise CorpusError(f"{path}: field 'entries' must be a non-empty list")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw, start=1):
        label = f"entry {i}"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            label += f" (id {item['id']!r})"
        where = f"{path}: {label}"
        entry = validate(Entry, item, where)
        if entry.id in seen:
            raise CorpusError(f"{where}: field 'id': duplicate id, already used by entry {seen[entry.id]}")
        if entry.category not in categories:
            raise CorpusError(
                f"{where}: field 'category': unknown category {entry.category!r}; "
                f"expected one of {', '.join(categories)}"
            )
        seen[entry.id] = i
        entries.append(entry)
    return tuple(entries)


def _load_synonyms(path: Path) -> tuple[tuple[str, ...], ...]:
    data = read_yaml(path, required=False)
    groups = data.get("groups", [])
    if not isinstance(groups, list):
        raise CorpusError(f"{path}: field 'groups' must be a list of lists")
    out = []
    for i, group in enumerate(groups, start=1):
        if (
            not isinstance(group, list)
            or len(group) < 2
            or not all(isinstance(s, (str, int)) and str(s).strip() for s in group)
        ):
            raise CorpusError(f"{path}: group {i}: must list at least two non-empty words")
        out.append(tuple(str(s).strip() for s in group))
    return tuple(out)


def _load_unanswered(path: Path) -> tuple[Unanswered, ...]:
    raw = read_yaml(path, required=False).get("questions", [])
    if not isinstance(raw, list):
        raise CorpusError(f"{path}: field 'questions' must be a list")
    return tuple(validate(Unanswered, item, f"{path}: question {i}") for i, item in enumerate(raw, start=1))


def _load_contacts(path: Path) -> Contacts:
    return validate(Contacts, read_yaml(path, required=False), str(path))


def validate(model: type[Any], item: object, where: str) -> Any:
    if not isinstance(item, dict):
        raise CorpusError(f"{where}: expected a mapping of fields, got {type(item).__name__}")
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        raise CorpusError(f"{where}: field {field!r}: {msg}") from None


def read_yaml(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise CorpusError(f"{path}: file not found")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise CorpusError(f"{path}: {line}: invalid YAML: {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: the top level must be a mapping")
    return data
