"""Configuration of stage 2: DPO for encoder-decoder linkers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from trl import DPOConfig

from angel_trl.errors import check_at_least
from angel_trl.trainers.dev_linking_config import DevLinkingArguments, check_dev_linking, check_early_stopping, check_final_eval_splits, pin_memory_only_with_an_accelerator


@dataclass
class Seq2SeqDPOConfig(DevLinkingArguments, DPOConfig):
    """TRL's ``DPOConfig`` (``beta``, ``loss_type`` list + ``loss_weights``, ``label_smoothing``,
    ``precompute_ref_log_probs``, ``disable_dropout``) plus encoder-decoder and dev-linking fields.

    Supported ``loss_type`` values: ``sigmoid``, ``hinge``, ``ipo``, ``robust`` and ``sft`` (NLL on
    the chosen name; ``["sigmoid", "sft"]`` is RPO). ``sigmoid`` with ``label_smoothing`` > 0 is
    conservative DPO (cDPO, labels flipped with that probability). Sequence log-probs sum only the
    name tokens. DPOConfig options that this trainer does not implement raise when set.
    """

    # Inputs (must match stage 1: saved in the stage-1 linker config and read by the recipe)
    max_source_length: int = field(default=256, metadata={"help": "Encoder tokens; longer prompts are cut (and counted)."})
    keep_start_if_best: bool = field(default=True, metadata={"help": "Score the starting (stage-1) model on the dev mentions before training and keep it when no stage-2 checkpoint beats it on metric_for_best_model (needs load_best_model_at_end and a dev corpus)."})
    # Defaults that differ from DPOConfig's
    learning_rate: float = field(default=1e-5, metadata={"help": "Initial learning rate (stage 2 moves a trained model: keep it small)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the tokenised columns for the collator."})
    metric_for_best_model: str | None = field(default="acc@1", metadata={"help": "Dev metric that picks the best checkpoint."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Higher metric_for_best_model is better."})
    # TRL turns it on for its decoder-only LLMs; on these models it costs ~20% of a step for no memory worth having.
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in the backward pass (saves memory, costs time): off unless asked."})

    def __post_init__(self):
        check_unsupported_dpo_options(self)
        check_at_least("max_source_length", self.max_source_length, 1)
        # TRL turns bf16 on by default, which stops a CPU-only run at start-up; use it only where it works.
        if self.bf16 is None and not self.fp16:
            self.bf16 = not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        super().__post_init__()
        check_early_stopping(self)
        check_final_eval_splits(self)
        check_dev_linking(self)
        pin_memory_only_with_an_accelerator(self)


# DPOConfig fields this trainer does not implement. Left at TRL's default they are harmless; set to
# anything else they would be silently ignored, so they are refused. (Sequences are not truncated by
# ``max_length`` here: sources by ``max_source_length``, names by the linker's ``max_name_tokens``.)
UNSUPPORTED_DPO_OPTIONS = (
    "model_init_kwargs", "router_aux_loss_coef", "dataset_num_proc", "max_length", "truncation_mode", "padding_free",
    "pad_to_multiple_of", "ld_alpha", "f_divergence_type", "f_alpha_divergence_coef", "use_weighting", "discopop_tau",
    "activation_offloading", "sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps", "pad_token",
)


def check_unsupported_dpo_options(config: DPOConfig) -> None:
    """Raise naming every DPOConfig option that was set but that the encoder-decoder trainer would ignore."""
    defaults = {f.name: f.default for f in dataclasses.fields(DPOConfig)}
    changed = [f"{name}={getattr(config, name)!r}" for name in UNSUPPORTED_DPO_OPTIONS if name in defaults and getattr(config, name, None) != defaults[name]]
    if changed:
        raise ValueError(f"Seq2SeqDPOConfig does not implement {', '.join(changed)}: leave them at TRL's defaults (they would be silently ignored)")
