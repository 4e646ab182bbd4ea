"""Adapt the embedding model to one FAQ with the FAQ's own texts, at index build time.

A general model knows little of a desk's vocabulary (制度名, 窓口名, the words people use
for them). The FAQ itself says which texts belong together: every question and
alternate phrasing is asked, and its entry's answer answers it. A short contrastive
fine-tune on those pairs (in-batch negatives, as e5 itself was trained) pulls each
asked text toward its answer and away from other entries' answers. No user query and
no outside data is used, so the same step runs on any FAQ, including benchmark ones.

Where an entry has alternates, each asked text is also pulled toward another asked
text of its entry and away from other entries' ones. The strongest ranking and
confidence signal compares a query with questions and alternates, all embedded as
queries; this trains that comparison directly, so a new wording of an entry lands
near its known wordings rather than only near its answer.

Word embeddings stay frozen: they hold most of the parameters, training them is slow
on a CPU, and a few hundred pairs would only overfit the rare tokens they touch.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING

from bot.corpus import Corpus
from bot.embed.sentence_transformer import SentenceTransformerEmbedder
from bot.text import TextProcessor

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# e5's contrastive temperature is 0.01; 0.05 (scale 20) is the sentence-transformers
# default and is gentler on a model that is already trained.
SIMILARITY_SCALE = 20.0


@dataclass(frozen=True)
class AdaptOptions:
    """What the adapted weights depend on; recorded in the index manifest."""

    epochs: float
    learning_rate: float
    batch_size: int
    max_tokens: int
    sibling_weight: float = 0.0
    seed: int = 0
    trained_layers: int | None = None
    """How many of the encoder's last layers are trained (None: every layer and the
    embeddings but the word table)."""

    def as_manifest(self) -> dict[str, object]:
        recorded = asdict(self)
        if self.trained_layers is None:
            del recorded["trained_layers"]  # as recorded before the option existed
        return recorded


@dataclass(frozen=True)
class Pair:
    asked: str
    answer: str
    entry: int


def training_pairs(corpus: Corpus, text: TextProcessor) -> list[Pair]:
    """Each question and alternate with its entry's answer, folded as the index folds them."""
    pairs = []
    for i, entry in enumerate(corpus.entries):
        answer = text.fold(entry.answer)
        for asked in (entry.question, *entry.alternates):
            pairs.append(Pair(text.fold(asked), answer, i))
    return pairs


def adapt(
    embedder: SentenceTransformerEmbedder, pairs: list[Pair], options: AdaptOptions
) -> SentenceTransformerEmbedder:
    """A fine-tuned copy of `embedder`; the original is left as it was."""
    import torch
    import torch.nn.functional as F

    if len({p.entry for p in pairs}) < 2 or options.epochs <= 0:
        return embedder
    model = embedder.copy_model()
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    sibling_rng = random.Random(options.seed + 1)
    siblings = _siblings(pairs) if options.sibling_weight > 0 else {}
    inference_length = model.max_seq_length
    model.max_seq_length = options.max_tokens
    layers = _layer_count(name for name, _ in model.named_parameters())
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(_trained(name, layers, options.trained_layers))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=0.01)
    batch = min(options.batch_size, len(pairs))
    steps = max(1, math.ceil(len(pairs) / batch * options.epochs))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps)
    )

    def encode(texts: list[str]) -> torch.Tensor:
        features = model.preprocess(texts)
        return F.normalize(model(features)["sentence_embedding"], dim=-1)

    def contrastive(left: torch.Tensor, right: torch.Tensor, entries: list[int]) -> torch.Tensor:
        """Symmetric in-batch InfoNCE: row i of `left` belongs with row i of `right`."""
        logits = SIMILARITY_SCALE * left @ right.T
        ids = torch.tensor(entries)
        # Another pair of the same entry is not a negative.
        same = (ids[:, None] == ids[None, :]) & ~torch.eye(len(entries), dtype=torch.bool)
        logits = logits.masked_fill(same, float("-inf"))
        target = torch.arange(len(entries))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    log.info("adapting the model to the FAQ: %d pairs, %d steps", len(pairs), steps)
    dropout = uses_dropout(pairs)
    model.train(dropout)
    encode_answers = encode if dropout else partial(_encode_once, encode)
    order = list(pairs)
    step = 0
    while step < steps:
        rng.shuffle(order)
        for start in range(0, len(order) - batch + 1, batch):
            if step >= steps:
                break
            chunk = order[start : start + batch]
            asked = encode([embedder.query_prefix + p.asked for p in chunk])
            answers = encode_answers([embedder.passage_prefix + p.answer for p in chunk])
            loss = contrastive(asked, answers, [p.entry for p in chunk])
            with_siblings = [i for i, p in enumerate(chunk) if (p.entry, p.asked) in siblings]
            if len(with_siblings) > 1:
                other = [sibling_rng.choice(siblings[chunk[i].entry, chunk[i].asked]) for i in with_siblings]
                paired = encode([embedder.query_prefix + text for text in other])
                entries = [chunk[i].entry for i in with_siblings]
                loss = loss + options.sibling_weight * contrastive(asked[with_siblings], paired, entries)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 10 == 0 or step == steps:
                log.info("adapting: step %d/%d, loss %.3f", step, steps, loss.item())
    model.eval()
    model.max_seq_length = inference_length
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return embedder.with_model(model)


_LAYER = re.compile(r"\.layer\.(\d+)\.")


def _layer_count(names: Iterable[str]) -> int:
    return 1 + max((int(m.group(1)) for name in names if (m := _LAYER.search(name))), default=-1)


def _trained(name: str, layers: int, trained_layers: int | None) -> bool:
    """Whether a parameter is trained. Training only the last layers spares the backward
    pass through the rest, and their activations: the build's time and memory."""
    if "word_embeddings" in name:
        return False
    if trained_layers is None:
        return True
    layer = _LAYER.search(name)
    return layer is not None and int(layer.group(1)) >= layers - trained_layers


def uses_dropout(pairs: list[Pair]) -> bool:
    """Dropout only for an FAQ asked one way per entry.

    There it acts as the only variation of each pair's input: LocalgovFAQ's odd ids lost
    0.013 nDCG@10 without it. Where entries are asked several ways, the wordings vary the input
    already and dropout only added noise (seed tuning splits, leave-one-out: 97.1% right
    without it, 95.6% with). Without it a text embeds the same wherever it appears, so a
    batch's repeated answers can be encoded once.
    """
    return len({p.entry for p in pairs}) == len(pairs)


def _encode_once(encode: Callable[[list[str]], torch.Tensor], texts: list[str]) -> torch.Tensor:
    """`encode(texts)`, with each distinct text run through the model once.

    A batch of pairs from a small FAQ repeats the same few answers, the longest texts
    in training. With dropout off, gathering the rows back gives the same matrix and
    the same gradients at a fraction of the cost.
    """
    distinct = list(dict.fromkeys(texts))
    if len(distinct) == len(texts):
        return encode(texts)
    position = {text: i for i, text in enumerate(distinct)}
    return encode(distinct)[[position[text] for text in texts]]


def _siblings(pairs: list[Pair]) -> dict[tuple[int, str], list[str]]:
    """(entry, asked text) -> the entry's other asked texts; entries asked one way only are absent."""
    by_entry: dict[int, list[str]] = {}
    for p in pairs:
        by_entry.setdefault(p.entry, []).append(p.asked)
    return {
        (entry, text): others
        for entry, texts in by_entry.items()
        for text in texts
        if (others := [t for t in texts if t != text])
    }
