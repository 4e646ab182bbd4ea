"""The adaptation's sibling term, on a hand-made FAQ small enough to fine-tune in seconds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bot.embed.adapt import AdaptOptions, Pair, _encode_once, adapt, uses_dropout
from bot.embed.sentence_transformer import SentenceTransformerEmbedder

ENTRIES = {
    "セミナーはオンラインで開催します。": ["セミナーの形式は？", "ネットで参加できますか", "会場に行く必要はある？"],
    "資料は後日メールでお送りします。": ["投影資料はもらえますか", "スライドが欲しい", "配布物はありますか"],
    "派遣の日時は面談で決めます。": ["派遣日はどう決まる？", "専門家が来る日程の決め方", "訪問日の調整方法"],
    "電話での支援もできます。": ["電話で相談に乗ってもらえる？", "リモートでの支援は可能？", "来てもらわずに助言がほしい"],
}
OPTIONS = AdaptOptions(epochs=4, learning_rate=1e-4, batch_size=12, max_tokens=32)


def _pairs(asked_per_entry: int) -> list[Pair]:
    return [
        Pair(asked, answer, i)
        for i, (answer, asked_texts) in enumerate(ENTRIES.items())
        for asked in asked_texts[:asked_per_entry]
    ]


def _sibling_margin(embedder: SentenceTransformerEmbedder, pairs: list[Pair]) -> float:
    """Mean over asked texts of: mean cosine to its siblings minus best cosine to another entry's."""
    vectors = embedder.embed_queries([p.asked for p in pairs])
    sims = vectors @ vectors.T
    entries = np.array([p.entry for p in pairs])
    same = entries[:, None] == entries[None, :]
    np.fill_diagonal(same, False)
    other = entries[:, None] != entries[None, :]
    own = np.where(same, sims, 0.0).sum(axis=1) / same.sum(axis=1)
    return float((own - np.where(other, sims, -np.inf).max(axis=1)).mean())


def test_sibling_weight_pulls_an_entrys_wordings_together(embedder: SentenceTransformerEmbedder) -> None:
    pairs = _pairs(3)
    answers_only = adapt(embedder, pairs, OPTIONS)
    with_siblings = adapt(embedder, pairs, replace(OPTIONS, sibling_weight=1.0))
    assert _sibling_margin(with_siblings, pairs) > _sibling_margin(answers_only, pairs) + 0.03


def test_entries_asked_one_way_only_train_exactly_as_without_siblings(embedder: SentenceTransformerEmbedder) -> None:
    # LocalgovFAQ-like corpora (no alternates) must get the very same model either way.
    pairs = _pairs(1)
    options = AdaptOptions(epochs=1, learning_rate=1e-4, batch_size=4, max_tokens=32)
    plain = adapt(embedder, pairs, options)
    weighted = adapt(embedder, pairs, replace(options, sibling_weight=1.0))
    texts = [p.asked for p in pairs] + [p.answer for p in pairs]
    assert plain is not embedder and np.array_equal(plain.embed_queries(texts), weighted.embed_queries(texts))
    assert not np.array_equal(plain.embed_queries(texts), embedder.embed_queries(texts)), "training changed the model"


def test_repeated_answers_are_encoded_once_with_the_same_rows_and_gradients(
    embedder: SentenceTransformerEmbedder,
) -> None:
    import torch

    model = embedder.copy_model()
    model.eval()
    seen: list[list[str]] = []

    def encode(texts: list[str]) -> torch.Tensor:
        seen.append(texts)
        return model(model.preprocess(texts))["sentence_embedding"]

    texts = ["資料は後日お送りします。", "電話での支援もできます。", "資料は後日お送りします。"]
    weights = torch.randn(3, embedder.dim, generator=torch.Generator().manual_seed(0))
    gradients = []
    for encoder in (encode, lambda t: _encode_once(encode, t)):
        model.zero_grad()
        rows = encoder(texts)
        (rows * weights).sum().backward()
        gradients.append(next(p for p in model.parameters() if p.requires_grad).grad.clone())
        assert torch.allclose(rows[0], rows[2])
    assert seen[1] == texts[:2], "each distinct text once, in order"
    assert torch.allclose(gradients[0], gradients[1], atol=1e-5)


def test_dropout_only_for_an_faq_asked_one_way_per_entry() -> None:
    assert uses_dropout(_pairs(1)) and not uses_dropout(_pairs(3))


def test_only_the_last_layers_are_trained_when_asked(embedder: SentenceTransformerEmbedder) -> None:
    options = AdaptOptions(epochs=1, learning_rate=1e-4, batch_size=4, max_tokens=32, trained_layers=2)
    adapted = adapt(embedder, _pairs(1), options)
    before = dict(embedder.torch_model.named_parameters())
    after = dict(adapted.torch_model.named_parameters())
    layers = 1 + max(int(name.split(".layer.")[1].split(".")[0]) for name in before if ".layer." in name)
    changed = {name for name, p in after.items() if not np.array_equal(p.detach().numpy(), before[name].detach().numpy())}
    trained = {name for name in before if any(f".layer.{i}." in name for i in (layers - 2, layers - 1))}
    assert changed and changed <= trained, sorted(changed - trained)[:3]
    assert options.as_manifest()["trained_layers"] == 2
    assert "trained_layers" not in replace(options, trained_layers=None).as_manifest(), "indexes built before stay valid"
