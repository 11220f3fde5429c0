"""Configuration of stage 1 (positive-only training)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments, TrainingArguments

EARLY_STOPPING_HELP = (
    "Stop when dev acc@1 (metric_for_best_model) has not improved for this many evaluations; off when unset. "
    "Needs load_best_model_at_end (and so an eval_strategy other than 'no')."
)


FINAL_EVAL_SPLITS_HELP = (
    "Splits linked and scored in full once training ends (predictions_<split>.jsonl and the results file): dev and/or test. "
    "Leave dev out when it is large and decoding is slow (a CPU links ~2-3 mentions/s with 10 beams): training already "
    "scored it, on max_eval_mentions of them, to pick the checkpoint. Iterative stage 2 needs dev here to pick its best round "
    "(without it, the last round is kept)."
)


def check_final_eval_splits(args: TrainingArguments) -> None:
    unknown = set(args.final_eval_splits) - {"dev", "test"}
    if unknown:
        raise ValueError(f"final_eval_splits takes dev and/or test, not {sorted(unknown)}")


def check_early_stopping(args: TrainingArguments) -> None:
    """Refuse ``early_stopping_patience`` where it cannot work, at configuration time: transformers'
    ``EarlyStoppingCallback`` only asserts when training starts, and without ``load_best_model_at_end``
    a stopped run would keep its last (non-improving) weights."""
    patience = args.early_stopping_patience
    if patience is None:
        return
    if patience < 1:
        raise ValueError(f"early_stopping_patience must be at least 1, got {patience}")
    if args.eval_strategy == "no" or not args.load_best_model_at_end:
        raise ValueError("early_stopping_patience needs evaluations and the best checkpoint kept: set eval_strategy (steps or epoch) and load_best_model_at_end true")


@dataclass
class Stage1Config(Seq2SeqTrainingArguments):
    """``Seq2SeqTrainingArguments`` plus how stage-1 rows are built and how dev linking is scored."""

    # Targets
    target_top_k: int = field(default=3, metadata={"help": "Gold-concept names per mention, most TF-IDF-similar first (one row each)."})
    avoid_shared_targets: bool = field(default=True, metadata={"help": "Train on names unique to the gold concept when it has any: a name shared with other concepts cannot be linked unambiguously."})
    kb_rows: bool = field(default=True, metadata={"help": "Add KB synonym rows (name -> names of its concept) so unseen mentions can reach every KB name."})
    kb_target_top_k: int = field(default=2, metadata={"help": "Targets per KB synonym row (the name itself first)."})
    max_kb_names: int | None = field(default=None, metadata={"help": "Sample at most this many KB names as synonym-row sources (seeded); all when unset."})
    # Input text
    max_context_words: int = field(default=64, metadata={"help": "Words of context kept on each side of the mention."})
    lowercase: bool = field(default=True, metadata={"help": "Lowercase inputs, prompts and KB names."})
    max_source_length: int = field(default=256, metadata={"help": "Encoder tokens; longer inputs are cut (and counted)."})
    # Model built from scratch
    model_size: str = field(default="small", metadata={"help": "Size preset when building from scratch: tiny, small or base."})
    tokenizer_vocab_size: int | None = field(default=None, metadata={"help": "BPE vocabulary when building from scratch (preset default when unset)."})
    # Dev linking
    link_num_beams: int = field(default=10, metadata={"help": "Beams of constrained decoding at evaluation."})
    link_top_k: int = field(default=5, metadata={"help": "Distinct concepts kept per mention."})
    link_batch_size: int = field(default=32, metadata={"help": "Mentions per constrained-decoding batch."})
    max_eval_mentions: int | None = field(default=None, metadata={"help": "Score only this many dev mentions during training (final_eval_splits decides what is scored in full at the end)."})
    final_eval_splits: list[str] = field(default_factory=lambda: ["dev", "test"], metadata={"help": FINAL_EVAL_SPLITS_HELP})
    early_stopping_patience: int | None = field(default=None, metadata={"help": EARLY_STOPPING_HELP})
    # Defaults that differ from transformers'
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep prompt/target columns for the collator."})
    metric_for_best_model: str | None = field(default="acc@1", metadata={"help": "Dev metric that picks the best checkpoint."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Higher metric_for_best_model is better."})

    def __post_init__(self):
        super().__post_init__()
        check_early_stopping(self)
        check_final_eval_splits(self)
