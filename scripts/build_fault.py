"""Kill `python -m bot build --force` with SIGKILL at moments spread over a build and
check, after each kill, that the previous index still loads and that the next build
removes what the killed one left behind.

Run it on the machine and filesystem that will hold the index (for example before
pointing FAQBOT_INDEX_DIR at another volume). By default it works in a temporary folder
on the project's corpus without adaptation, so it takes a few minutes at most; an
--index-dir you give is rebuilt, so do not point it at a live service's index.
Example:
    .venv/bin/python scripts/build_fault.py --kills 8
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.atomic import leftovers
from bot.config import Settings
from bot.corpus import load_corpus
from bot.embed.base import Embedder
from bot.engine import ensure_index, load_embedder
from bot.errors import FaqbotError
from bot.index import expected_manifest, load_index
from bot.text import TextProcessor

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=8, help="how many builds to kill (default 8)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: the project's)")
    parser.add_argument("--index-dir", type=Path, default=None, help="index folder to rebuild (default: a temporary one)")
    parser.add_argument("--model", default=None, help="model name or path (default: FAQBOT_MODEL or the exported e5)")
    parser.add_argument("--adapt-epochs", type=float, default=0.0, help="adaptation epochs (default 0, for speed)")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop killing after this long (default 900)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    defaults = Settings(log_level="WARNING")
    model = args.model or defaults.model
    if Path(model).exists():
        model = str(Path(model).resolve())
    with tempfile.TemporaryDirectory(prefix="faqbot-build-fault-") as scratch:
        settings = defaults.model_copy(
            update={
                "corpus_dir": (args.corpus or defaults.corpus_dir).resolve(),
                "index_dir": (args.index_dir or Path(scratch) / "faq").resolve(),
                "model": model,
                "adapt_epochs": args.adapt_epochs,
            }
        )
        return experiment(settings, args.kills, args.max_seconds)


def experiment(settings: Settings, kills: int, max_seconds: float) -> int:
    """Print one line per kill and a summary; 0 when every kill kept the index and was cleaned up."""
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")} | {
        "FAQBOT_CORPUS_DIR": str(settings.corpus_dir),
        "FAQBOT_INDEX_DIR": str(settings.index_dir),
        "FAQBOT_MODEL": settings.model,
        "FAQBOT_ADAPT_EPOCHS": str(settings.adapt_epochs),
        "FAQBOT_RUNTIME": settings.runtime,
        "FAQBOT_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "bot", "build", "--force"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    print(f"index: {settings.index_dir}\ncorpus: {settings.corpus_dir} (adaptation epochs {settings.adapt_epochs:g})")
    build_started = time.monotonic()
    if start().wait(timeout=max_seconds) != 0:
        print("the first, unkilled build failed; run `python -m bot build` to see why")
        return 2
    duration = time.monotonic() - build_started
    print(f"a whole build takes {duration * 1000:.0f} ms; killing {kills} builds at moments spread over it")
    embedder = load_embedder(settings)
    corpus = load_corpus(settings.corpus_dir)
    text = TextProcessor(corpus.synonyms)
    loadable = cleaned = done = 0
    for i in range(kills):
        if time.monotonic() - started > max_seconds:
            print(f"stopping: over --max-seconds {max_seconds:g}")
            break
        delay = duration * (i + 0.5) / kills
        before = os.stat(settings.index_dir).st_ino
        process = start()
        time.sleep(delay)
        running = process.poll() is None
        if running:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        left = len(leftovers(settings.index_dir))
        ok, which = _loads(settings, embedder), "previous" if os.stat(settings.index_dir).st_ino == before else "new"
        ensure_index(settings, corpus, embedder, text, force=True)
        clean = not leftovers(settings.index_dir) and _loads(settings, embedder)
        done += 1
        loadable += ok
        cleaned += clean
        state = "killed while running" if running else "had already finished"
        print(
            f"kill {i + 1}/{kills} at {delay * 1000:6.0f} ms: {state}, {left} temporary folder(s) left; "
            f"index loadable: {'yes' if ok else 'NO'} ({which} build); next build cleaned up: {'yes' if clean else 'NO'}"
        )
    print(f"{done} kills, {loadable} loadable, {cleaned} cleaned")
    return 0 if done == loadable == cleaned == kills else 1


def _loads(settings: Settings, embedder: Embedder) -> bool:
    corpus = load_corpus(settings.corpus_dir)
    try:
        load_index(settings.index_dir, expected_manifest(corpus, embedder, settings.adaptation), embedder)
    except FaqbotError as exc:
        print(f"  cannot load: {exc}")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
