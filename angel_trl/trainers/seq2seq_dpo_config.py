"""Configuration of stage 2: DPO for encoder-decoder linkers."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from trl import DPOConfig

from .stage1_config import EARLY_STOPPING_HELP, FINAL_EVAL_SPLITS_HELP, check_early_stopping, check_final_eval_splits


@dataclass
class Seq2SeqDPOConfig(DPOConfig):
    """TRL's ``DPOConfig`` (``beta``, ``loss_type`` list + ``loss_weights``, ``label_smoothing``,
    ``precompute_ref_log_probs``, ``disable_dropout``) plus encoder-decoder and dev-linking fields.

    Supported ``loss_type`` values: ``sigmoid``, ``hinge``, ``ipo``, ``robust`` and ``sft`` (NLL on
    the chosen name; ``["sigmoid", "sft"]`` is RPO). Sequence log-probs sum only the name tokens.
    """

    # Inputs (must match stage 1: saved in the stage-1 linker config and read by the recipe)
    max_source_length: int = field(default=256, metadata={"help": "Encoder tokens; longer prompts are cut (and counted)."})
    # Dev linking
    link_num_beams: int = field(default=10, metadata={"help": "Beams of constrained decoding at evaluation."})
    link_top_k: int = field(default=5, metadata={"help": "Distinct concepts kept per mention."})
    link_batch_size: int = field(default=32, metadata={"help": "Mentions per constrained-decoding batch."})
    max_eval_mentions: int | None = field(default=None, metadata={"help": "Score only this many dev mentions during training (final_eval_splits decides what is scored in full at the end)."})
    final_eval_splits: list[str] = field(default_factory=lambda: ["dev", "test"], metadata={"help": FINAL_EVAL_SPLITS_HELP})
    early_stopping_patience: int | None = field(default=None, metadata={"help": EARLY_STOPPING_HELP})
    keep_start_if_best: bool = field(default=True, metadata={"help": "Score the starting (stage-1) model on the dev mentions before training and keep it when no stage-2 checkpoint beats it on metric_for_best_model (needs load_best_model_at_end and a dev corpus)."})
    # Defaults that differ from DPOConfig's
    learning_rate: float = field(default=1e-5, metadata={"help": "Initial learning rate (stage 2 moves a trained model: keep it small)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the tokenised columns for the collator."})
    metric_for_best_model: str | None = field(default="acc@1", metadata={"help": "Dev metric that picks the best checkpoint."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Higher metric_for_best_model is better."})

    def __post_init__(self):
        # TRL turns bf16 on by default, which stops a CPU-only run at start-up; use it only where it works.
        if self.bf16 is None and not self.fp16:
            self.bf16 = not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        super().__post_init__()
        check_early_stopping(self)
        check_final_eval_splits(self)
