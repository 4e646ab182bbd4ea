"""Index builds killed at any moment leave the previous index loadable, and the next
build clears what they left. Real subprocesses, real SIGKILL, real filesystem."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from scripts_loader import load_script

from bot.atomic import leftovers, replace_folder, staging_folder
from bot.config import Settings
from bot.corpus import load_corpus
from bot.embed.base import Embedder
from bot.engine import ensure_index
from bot.errors import IndexMissingError
from bot.index import MANIFEST_FILE, FaqIndex, expected_manifest, load_index
from bot.text import TextProcessor

ROOT = Path(__file__).resolve().parent.parent

# Swaps a two-file folder in a loop: each finished folder holds the same number twice.
SWAP_LOOP = """
import sys
from pathlib import Path
from bot.atomic import replace_folder
n = 0
while True:
    n += 1
    def fill(tmp, n=n):
        (tmp / "a").write_text(str(n))
        (tmp / "b").write_text(str(n))
    replace_folder(Path(sys.argv[1]), fill)
"""

# Writes 64 MB into its temporary folder, says so, then waits to be killed.
SLOW_WRITE = """
import sys, time
from pathlib import Path
from bot.atomic import replace_folder
def fill(tmp):
    with open(tmp / "index.faiss", "wb") as f:
        for _ in range(64):
            f.write(b"x" * (1 << 20))
    (tmp / "written").touch()
    time.sleep(float(sys.argv[2]))
    (tmp / "b").write_text("B")
replace_folder(Path(sys.argv[1]), fill)
"""


@pytest.fixture(scope="module")
def small_corpus(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two entries and no unanswered list: a build takes seconds, not minutes."""
    folder = tmp_path_factory.mktemp("small") / "corpus"
    shutil.copytree(settings.corpus_dir, folder)
    faq = yaml.safe_load((folder / "faq.yaml").read_text(encoding="utf-8"))
    faq["entries"] = faq["entries"][:2]
    (folder / "faq.yaml").write_text(yaml.safe_dump(faq, allow_unicode=True), encoding="utf-8")
    (folder / "unanswered.yaml").write_text("questions: []\n", encoding="utf-8")
    return folder


def local(settings: Settings, corpus_dir: Path, index_dir: Path) -> Settings:
    """Unadapted, on PyTorch: a build of seconds, most of them loading torch, so kills land
    all over it (on ONNX Runtime a build is over before most kills)."""
    return settings.model_copy(
        update={"corpus_dir": corpus_dir, "index_dir": index_dir, "adapt_epochs": 0, "runtime": "torch"}
    )


def build(settings: Settings, embedder: Embedder) -> None:
    corpus = load_corpus(settings.corpus_dir)
    assert ensure_index(settings, corpus, embedder, TextProcessor(corpus.synonyms), force=True)


def load(settings: Settings, embedder: Embedder) -> FaqIndex:
    corpus = load_corpus(settings.corpus_dir)
    return load_index(settings.index_dir, expected_manifest(corpus, embedder, None), embedder)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def writes(name: str, content: str) -> Callable[[Path], None]:
    def fill(tmp: Path) -> None:
        (tmp / name).write_text(content)

    return fill


def python(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT)


def kill(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL; True when it was still running."""
    running = process.poll() is None
    if running:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return running


def wait_for(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture()
def swapper() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        kill(process)


def test_saving_twice_keeps_only_the_live_index(tmp_path: Path, settings: Settings, small_corpus: Path, embedder: Embedder) -> None:
    live = local(settings, small_corpus, tmp_path / "faq")
    build(live, embedder)
    first = os.stat(live.index_dir).st_ino
    build(live, embedder)
    assert os.stat(live.index_dir).st_ino != first, "the second build swapped in a new folder"
    assert load(live, embedder).index.ntotal > 0
    assert names(tmp_path) == ["faq"], "the previous version is gone"


def test_next_build_removes_abandoned_folders(tmp_path: Path, settings: Settings, small_corpus: Path, embedder: Embedder) -> None:
    live = local(settings, small_corpus, tmp_path / "faq")
    build(live, embedder)
    for leftover in (".faq-build-k1ll3d_x", ".faq-ab12cd_3", "faq.old"):  # ours, and earlier versions'
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "index.faiss").write_bytes(b"x" * 4096)
    (tmp_path / "faq-other").mkdir()  # not ours
    build(live, embedder)
    assert names(tmp_path) == ["faq", "faq-other"]
    load(live, embedder)


def test_a_staging_folder_left_by_a_killed_build_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    (tmp_path / ".build-k1ll3d").mkdir()  # its writer died: no lock on it
    (tmp_path / ".build-k1ll3d" / "model.onnx").write_bytes(b"x" * 4096)
    with staging_folder(tmp_path) as live:
        (live / "model.onnx").write_bytes(b"y")
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]
        with staging_folder(tmp_path) as other:  # a second build beside a running one
            assert live.is_dir() and (live / "model.onnx").read_bytes() == b"y"
            assert other != live
    assert list(tmp_path.iterdir()) == []


def test_an_index_moved_aside_by_an_earlier_version_is_put_back(tmp_path: Path, settings: Settings, small_corpus: Path, embedder: Embedder) -> None:
    # Earlier versions renamed the index to faq.old before moving the new one in.
    live = local(settings, small_corpus, tmp_path / "faq")
    build(live, embedder)
    (tmp_path / "faq").rename(tmp_path / "faq.old")

    def fail(tmp: Path) -> None:
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        replace_folder(live.index_dir, fail)
    load(live, embedder)
    assert names(tmp_path) == ["faq"]


def test_a_running_build_is_waited_for_not_cleaned_up(tmp_path: Path, swapper: list[subprocess.Popen[bytes]]) -> None:
    dest = tmp_path / "faq"
    other = python(SLOW_WRITE, str(dest), "1.5")
    swapper.append(other)
    wait_for(lambda: any((p / "written").exists() for p in leftovers(dest)))
    theirs = leftovers(dest)
    done = threading.Event()

    def ours() -> None:
        replace_folder(dest, writes("b", "A"))
        done.set()

    thread = threading.Thread(target=ours)
    thread.start()
    time.sleep(0.5)
    assert not done.is_set() and leftovers(dest) == theirs, "the other writer's folder is left alone"
    assert other.wait(timeout=30) == 0
    thread.join(timeout=30)
    assert done.is_set() and (dest / "b").read_text() == "A"
    assert names(tmp_path) == ["faq"]


def test_a_build_killed_while_writing_leaves_the_previous_index(
    tmp_path: Path, settings: Settings, small_corpus: Path, embedder: Embedder, swapper: list[subprocess.Popen[bytes]]
) -> None:
    live = local(settings, small_corpus, tmp_path / "faq")
    first = python(SLOW_WRITE, str(live.index_dir), "60")  # the very first build: no index yet
    swapper.append(first)
    wait_for(lambda: any((p / "written").exists() for p in leftovers(live.index_dir)))
    assert kill(first)
    with pytest.raises(IndexMissingError, match="python -m bot build"):
        load(live, embedder)
    build(live, embedder)
    before = (live.index_dir / MANIFEST_FILE).read_bytes()
    second = python(SLOW_WRITE, str(live.index_dir), "60")
    swapper.append(second)
    wait_for(lambda: any((p / "written").exists() for p in leftovers(live.index_dir)))
    assert kill(second)
    assert [p.stat().st_size for p in leftovers(live.index_dir)[0].iterdir() if p.name == "index.faiss"] == [64 << 20]
    assert (live.index_dir / MANIFEST_FILE).read_bytes() == before
    load(live, embedder)
    build(live, embedder)
    assert names(tmp_path) == ["faq"]


def test_readers_never_see_the_folder_missing_during_swaps(tmp_path: Path, swapper: list[subprocess.Popen[bytes]]) -> None:
    dest = tmp_path / "faq"
    loop = python(SWAP_LOOP, str(dest))
    swapper.append(loop)
    wait_for(lambda: (dest / "a").exists())
    seen, missing = set(), 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            seen.add((dest / "a").read_text())
        except FileNotFoundError:
            missing += 1
    assert len(seen) > 20, "the writer swapped many times while we read"
    assert missing == 0


def test_swaps_killed_at_random_moments_leave_a_whole_folder(tmp_path: Path, swapper: list[subprocess.Popen[bytes]]) -> None:
    dest = tmp_path / "faq"
    for delay in (0.15, 0.2, 0.23, 0.27, 0.31, 0.36, 0.42, 0.5):
        loop = python(SWAP_LOOP, str(dest))
        swapper.append(loop)
        wait_for(lambda: dest.exists())
        time.sleep(delay)
        assert kill(loop)
        assert (dest / "a").read_text() == (dest / "b").read_text()
    replace_folder(dest, writes("a", "last"))
    assert names(tmp_path) == ["faq"]


def test_the_fault_script_kills_real_builds_and_each_time_the_index_survives(
    tmp_path: Path, settings: Settings, small_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scripts/build_fault.py in a short mode: `python -m bot build` killed at three moments."""
    build_fault = load_script("build_fault")
    live = local(settings, small_corpus, tmp_path / "faq")
    assert build_fault.experiment(live, kills=3, max_seconds=300) == 0  # type: ignore[attr-defined]
    printed = capsys.readouterr().out
    assert "3 kills, 3 loadable, 3 cleaned" in printed
    assert printed.count("killed while running") >= 2, printed
    assert names(tmp_path) == ["faq"]
