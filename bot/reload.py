"""Live reload: apply a corpus edit without a restart and without a moment of downtime.

The corpus is re-read and validated at once (an error ends the reload as "failed", with
the message, and the live engine stays). When it changed, or a forced reload asks, a new
engine is built in a background thread: the index is rebuilt, in a child process, only
when its manifest no longer matches, then the engine is swapped in with one assignment. A request takes the
engine once at its start, so requests in flight finish on the old one, and none waits
for the build. One reload runs at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from bot.config import Settings
from bot.corpus import load_corpus
from bot.desk import TOKYO
from bot.engine import Engine, build_for, load_embedder, load_engine
from bot.errors import FaqbotError

log = logging.getLogger(__name__)

ReloadState = Literal["building", "live", "failed", "unchanged"]


class ReloadStatus(BaseModel):
    """What the last reload did, as `GET /admin/reload` shows it."""

    state: ReloadState
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    index_built_at: str | None = None
    duration_seconds: float | None = None


def corpus_fingerprint(folder: Path) -> str:
    """Hash of every file the desk edits: any edit, even to the small talk or the
    contacts, gives a new engine."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.yaml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _now() -> str:
    return dt.datetime.now(TOKYO).isoformat(timespec="seconds")


class Reloader:
    """Builds a new engine in the background and hands it to `swap` when it is ready."""

    def __init__(
        self,
        settings: Settings,
        current: Callable[[], Engine | None],
        swap: Callable[[Engine], None],
        on_finish: Callable[[str, float], None] | None = None,
    ) -> None:
        self._settings = settings
        self._current = current
        self._swap = swap
        self._on_finish = on_finish
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._fingerprint: str | None = corpus_fingerprint(settings.corpus_dir) if settings.corpus_dir.is_dir() else None
        engine = current()
        self.status = ReloadStatus(state="live", index_built_at=engine.index_built_at if engine else None)

    def start(self, force: bool = False) -> tuple[bool, ReloadStatus]:
        """(started, status): False with "unchanged" when nothing changed, False with the
        running reload's status while one builds, False with "failed" for a corpus with errors."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False, self.status
            started = _now()
            try:
                load_corpus(self._settings.corpus_dir)
                fingerprint = corpus_fingerprint(self._settings.corpus_dir)
            except FaqbotError as exc:
                self.status = ReloadStatus(
                    state="failed", started_at=started, finished_at=_now(), error=str(exc), index_built_at=self._live_built_at()
                )
                return False, self.status
            if not force and fingerprint == self._fingerprint:
                return False, ReloadStatus(state="unchanged", index_built_at=self._live_built_at())
            self.status = ReloadStatus(state="building", started_at=started, index_built_at=self._live_built_at())
            self._thread = threading.Thread(
                target=self._build, args=(fingerprint, force), name="reload", daemon=True
            )
            self._thread.start()
            return True, self.status

    def wait(self, timeout: float | None = None) -> ReloadStatus:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status

    def _live_built_at(self) -> str | None:
        engine = self._current()
        return engine.index_built_at if engine else None

    def _build(self, fingerprint: str, force: bool) -> None:
        began = time.monotonic()
        settings = self._settings
        try:
            # The build runs in a child process: it loads PyTorch and the model's weights,
            # which a service on ONNX Runtime would otherwise hold for good after one reload.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
                child.submit(build_for, settings, force).result()
            engine = load_engine(settings, load_embedder(settings))
        except Exception as exc:  # noqa: BLE001 (any build failure: report it, keep the live engine)
            log.error("reload failed: %s", exc)
            self._finish("failed", began, error=str(exc) if isinstance(exc, FaqbotError) else type(exc).__name__)
            return
        self._swap(engine)
        self._fingerprint = fingerprint
        log.info("reload: new engine live (index built %s) after %.1f s", engine.index_built_at, time.monotonic() - began)
        self._finish("live", began)

    def _finish(self, state: ReloadState, began: float, error: str | None = None) -> None:
        seconds = time.monotonic() - began
        self.status = self.status.model_copy(
            update={
                "state": state,
                "finished_at": _now(),
                "error": error,
                "index_built_at": self._live_built_at(),
                "duration_seconds": round(seconds, 2),
            }
        )
        if self._on_finish is not None:
            self._on_finish(state, seconds)
