"""Models and tokenizers: load any encoder-decoder checkpoint, warm-start one from a BERT-family
encoder, or build a BART from scratch.

No weights can be downloaded in some environments (and tests must be fast), so besides
``from_pretrained`` we can train a byte-level BPE tokenizer on the KB names and corpus text and
create a BART from a size preset. Both are saved with ``save_pretrained``, so later stages load
them like any checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, BartConfig, BartForConditionalGeneration, GenerationConfig, PreTrainedTokenizerFast
from transformers.utils import SAFE_WEIGHTS_NAME

from angel_trl.defaults import END_MARKER, START_MARKER
from angel_trl.errors import InputFormatError

# BART's special-token layout, kept so that ids match pretrained BART checkpoints' conventions.
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


@dataclass(frozen=True)
class SizePreset:
    d_model: int
    layers: int
    heads: int
    ffn_dim: int
    vocab_size: int
    max_positions: int = 512


SIZE_PRESETS: dict[str, SizePreset] = {
    "tiny": SizePreset(d_model=64, layers=1, heads=2, ffn_dim=128, vocab_size=1000),
    "small": SizePreset(d_model=256, layers=3, heads=4, ffn_dim=1024, vocab_size=8000),
    "base": SizePreset(d_model=768, layers=6, heads=12, ffn_dim=3072, vocab_size=32000, max_positions=1024),
}


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``texts`` with BART's special tokens plus ``[ST]`` / ``[ET]``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False, trim_offsets=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )
    add_marker_tokens(fast)
    return fast


def add_marker_tokens(tokenizer) -> int:
    """Add ``[ST]`` / ``[ET]`` as special tokens (no-op when present); returns how many were added."""
    markers = [AddedToken(t, special=True, normalized=False, lstrip=True, rstrip=True) for t in (START_MARKER, END_MARKER) if t not in tokenizer.get_vocab()]
    if not markers:
        return 0
    return tokenizer.add_special_tokens({"additional_special_tokens": markers}, replace_extra_special_tokens=False)


def build_model(preset: str, tokenizer) -> BartForConditionalGeneration:
    """A randomly initialised BART of the given size preset, sized to ``tokenizer``."""
    if preset not in SIZE_PRESETS:
        raise ValueError(f"unknown model size {preset!r}; expected one of {sorted(SIZE_PRESETS)}")
    p = SIZE_PRESETS[preset]
    # The encoder and the decoder of a preset have the same shape.
    sides = {f"{side}_{key}": value for side in ("encoder", "decoder") for key, value in (("layers", p.layers), ("attention_heads", p.heads), ("ffn_dim", p.ffn_dim))}
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=p.d_model,
        **sides,
        max_position_embeddings=p.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        # Constrained decoding must not force BOS/EOS tokens: they are not KB names.
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        dropout=0.1,
    )
    return BartForConditionalGeneration(config)


# Files that hold a saved tokenizer: a fast tokenizer's, or a slow one's vocabulary (BPE, SentencePiece, WordPiece).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "vocab.txt")


def load_pretrained(model_name_or_path: str, trust_remote_code: bool = False, **kwargs):
    """Load any encoder-decoder checkpoint and its tokenizer (local dir or Hub id): BART, T5, a
    saved warm-started ``EncoderDecoderModel``, ...; adds the markers if missing."""
    local = Path(model_name_or_path)
    if local.is_dir() and not any((local / f).is_file() for f in TOKENIZER_FILES):
        # transformers would build a tokenizer from the model config alone, with no vocabulary, and
        # fail later with a message about special tokens: say what is missing instead.
        raise InputFormatError(local, None, f"no tokenizer files ({', '.join(TOKENIZER_FILES)}): copy them from the run that saved the model")
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code, **kwargs)
    except SafetensorError as e:
        # Raised from deep inside transformers without the file's name: name it.
        raise InputFormatError(_weights_file(model_name_or_path), None, f"damaged or incomplete weights ({e}); save or download them again") from None
    if not model.config.is_encoder_decoder:
        raise ValueError(f"{model_name_or_path} is not an encoder-decoder model (BART, T5, a bert2bert EncoderDecoderModel)")
    return _ready(model, tokenizer)


def warm_start(
    encoder_name_or_path: str, decoder_name_or_path: str | None = None, decoder_layers: int | None = None, encoder_layers: int | None = None, trust_remote_code: bool = False
):
    """An ``EncoderDecoderModel`` ("bert2bert", Rothe et al. 2020) from a BERT-family encoder: the
    encoder's weights on both sides (or ``decoder_name_or_path``'s), cross-attention new.

    ``decoder_layers`` keeps the decoder's first layers only: decoding runs the decoder once per
    token and beam, the encoder once per mention, so a shallow decoder is where the time goes
    (``encoder_layers`` likewise, for small CPU budgets and tests).
    The tokenizer is the encoder's; ``[CLS]`` starts and ``[SEP]`` ends every decoder sequence.
    """
    from transformers import EncoderDecoderModel

    tokenizer = AutoTokenizer.from_pretrained(encoder_name_or_path, trust_remote_code=trust_remote_code)
    layers = {f"{side}_num_hidden_layers": n for side, n in (("encoder", encoder_layers), ("decoder", decoder_layers)) if n}
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(
        encoder_name_or_path, decoder_name_or_path or encoder_name_or_path, encoder_trust_remote_code=trust_remote_code, decoder_trust_remote_code=trust_remote_code, **layers
    )
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None or tokenizer.pad_token_id is None:
        raise ValueError(f"{encoder_name_or_path}: its tokenizer needs start ([CLS] or BOS), end ([SEP] or EOS) and pad tokens")
    model.config.decoder_start_token_id, model.config.eos_token_id, model.config.pad_token_id = start, end, tokenizer.pad_token_id
    model.config.bos_token_id = None
    model.config.vocab_size = model.config.decoder.vocab_size
    return _ready(model, tokenizer)


def _ready(model, tokenizer):
    """Markers added (embeddings resized on both sides), the checkpoint's task settings dropped."""
    if add_marker_tokens(tokenizer):
        resize_embeddings(model, len(tokenizer))
    model.generation_config = neutral_generation_config(model.config)
    return model, tokenizer


def resize_embeddings(model, size: int) -> None:
    """``resize_token_embeddings`` for every encoder-decoder: an ``EncoderDecoderModel`` refuses it,
    so each side is resized (the decoder's output layer stays tied to its input embeddings)."""
    if hasattr(model, "resize_token_embeddings") and type(model).__name__ != "EncoderDecoderModel":
        model.resize_token_embeddings(size)
        return
    model.encoder.resize_token_embeddings(size)
    model.decoder.resize_token_embeddings(size)
    model.config.encoder.vocab_size = model.config.decoder.vocab_size = model.config.vocab_size = size


def _weights_file(model_name_or_path: str) -> str:
    """The weights file of a local model directory (the model id itself for a Hub model)."""
    path = Path(model_name_or_path) / SAFE_WEIGHTS_NAME
    return str(path) if path.exists() else model_name_or_path


def neutral_generation_config(config) -> GenerationConfig:
    """Only the special-token ids of ``config``: what a checkpoint ships for its own task (bart-large's
    forced BOS/EOS and ``no_repeat_ngram_size: 3``, bart-large-cnn's ``min_length: 56``) must neither
    leak into decoding nor be saved into the linkers trained from it."""
    # T5's config has no bos_token_id at all (transformers 5 raises on it): getattr, not attribute access.
    return GenerationConfig(**{key: getattr(config, key, None) for key in ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id")})
