"""PEFT / LoRA for both training stages, with TRL's ``ModelConfig`` field names.

Stage 1 and stage 2 take the same ``--use_peft --lora_r ...`` flags (:class:`LoraArguments`),
turned into one ``LoraConfig`` by :func:`lora_config` (as ``trl.get_peft_config`` does, with the
task type of an encoder-decoder). A run saves the merged model, which loads like any checkpoint,
plus the adapter alone (and the tokenizer) in ``<output_dir>/adapter`` (:func:`save_adapter_and_merge`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from accelerate.utils import is_peft_model
from peft import LoraConfig, get_peft_model

from angel_trl.data.files import usual_permissions
from angel_trl.errors import FieldError, check_at_least

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"


@dataclass(kw_only=True)
class LoraArguments:
    """LoRA fields named as in ``trl.ModelConfig`` (keyword-only, so subclasses may add required fields)."""

    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights; the merged model and the adapter are saved."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling = lora_alpha / lora_r, or / sqrt(lora_r) with use_rslora)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path (set to 0 in stage 2 when disable_dropout is on)."})
    lora_target_modules: list[str] | None = field(default=None, metadata={"help": "Modules to adapt, e.g. q_proj v_proj, or all-linear; PEFT's default for the model type when unset (BART: q_proj v_proj)."})
    lora_modules_to_save: list[str] | None = field(default=None, metadata={"help": "Modules trained in full and saved with the adapter."})
    lora_task_type: str = field(default="SEQ_2_SEQ_LM", metadata={"help": "PEFT task type; SEQ_2_SEQ_LM for BART-family linkers."})
    use_rslora: bool = field(default=False, metadata={"help": "Rank-Stabilized LoRA: scale adapters by lora_alpha / sqrt(lora_r) instead of lora_alpha / lora_r."})
    use_dora: bool = field(default=False, metadata={"help": "Weight-Decomposed Low-Rank Adaptation (DoRA): magnitude trained apart from the LoRA direction."})

    def __post_init__(self) -> None:
        # At parse time: PEFT would only refuse them once the model is loaded.
        check_at_least("lora_r", self.lora_r, 1)
        check_at_least("lora_alpha", self.lora_alpha, 1)
        if not 0 <= self.lora_dropout < 1:
            raise FieldError("lora_dropout", f"must be at least 0 and below 1, not {self.lora_dropout}")


def lora_config(args: LoraArguments) -> LoraConfig | None:
    """The ``LoraConfig`` of ``args`` (None without ``use_peft``), field for field as ``trl.get_peft_config``."""
    if not args.use_peft:
        return None
    target_modules = args.lora_target_modules
    # As trl.ModelConfig does: one entry becomes a string, so `--lora_target_modules all-linear` means PEFT's keyword.
    if target_modules is not None and len(target_modules) == 1:
        target_modules = target_modules[0]
    return LoraConfig(
        task_type=args.lora_task_type,
        r=args.lora_r,
        target_modules=target_modules,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        bias="none",
        use_rslora=args.use_rslora,
        use_dora=args.use_dora,
        modules_to_save=args.lora_modules_to_save,
    )


def apply_lora(model, args: LoraArguments):
    """``model`` with new LoRA adapters when ``args.use_peft`` (only they train), else ``model`` unchanged."""
    config = lora_config(args)
    if config is None:
        return model
    if config.target_modules is None and model.config.model_type == "encoder-decoder":
        # PEFT knows no default for an EncoderDecoderModel: take its encoder's (BERT: query, value).
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

        config.target_modules = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model.config.encoder.model_type)
    if is_peft_model(model):
        raise ValueError("the model already has PEFT adapters; merge them (the saved linker directory is merged) before adding new ones")
    model = get_peft_model(model, config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total)
    return model


def save_adapter_and_merge(model, tokenizer, output_dir: str | Path):
    """Save adapter + tokenizer in ``output_dir/adapter``; return the merged plain model (``model`` is consumed).

    PEFT also saves the embeddings there when they were resized (``[ST]`` / ``[ET]`` added to a
    checkpoint that lacked them), so base checkpoint + adapter directory rebuild the model.
    """
    adapter_dir = Path(output_dir) / ADAPTER_DIR
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    usual_permissions(adapter_dir)  # the adapter's safetensors file comes out 0600
    # merge_and_unload folds the adapters into the base weights in place: no second copy of the model.
    return model.merge_and_unload()
