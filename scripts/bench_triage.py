"""What triage costs a message: the query path with and without it, in one process.

"Without" is the path as it was before triage (rank, then decide); "with" is
`Answerer.ask` (language, personal data, small talk, safety, then rank and decide).
Both run on the same messages, alternating, so they see the same machine load.
Needs a built index. Example:
    .venv/bin/python scripts/bench_triage.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import yaml

from bot.config import Settings
from bot.engine import load_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the messages (default 3)")
    args = parser.parse_args()
    settings = Settings(log_level="WARNING")
    engine = load_engine(settings)
    answerer = engine.answerer
    data = yaml.safe_load((settings.corpus_dir / "eval.yaml").read_text(encoding="utf-8"))
    messages = [i["query"] for i in [*data["in_domain"], *data["out_of_scope"]] if i.get("split") == "test8"]
    answerer.ask(messages[0])  # load the language model and the tagger before timing
    timings: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.rounds):
        for message in messages:
            started = time.perf_counter()
            answerer.reply(answerer.retriever.rank(message))
            middle = time.perf_counter()
            answerer.ask(message)
            timings["without"].append((middle - started) * 1000)
            timings["with"].append((time.perf_counter() - middle) * 1000)
    figures = {f"{k}_p50_ms": round(statistics.median(v), 2) for k, v in timings.items()}
    figures["triage_p50_ms"] = round(figures["with_p50_ms"] - figures["without_p50_ms"], 2)
    figures["messages"] = len(timings["with"])
    print(f"without triage p50 {figures['without_p50_ms']:.2f} ms, with triage {figures['with_p50_ms']:.2f} ms "
          f"({figures['triage_p50_ms']:+.2f} ms) over {figures['messages']} messages")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
