"""Configuration of stage 1 (positive-only training)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments

from angel_trl.errors import FieldError, check_at_least, check_choice
from angel_trl.modeling import SIZE_PRESETS
from angel_trl.trainers.dev_linking_config import DevLinkingArguments, check_dev_linking, check_early_stopping, check_final_eval_splits, pin_memory_only_with_an_accelerator

# Counts of at least 1 (0 would build no rows, cut every source, or sample no KB name); optional ones unset is fine.
AT_LEAST_ONE = ("target_top_k", "kb_target_top_k", "max_kb_names", "kb_names_per_concept", "max_source_length", "tokenizer_vocab_size")


@dataclass
class Stage1Config(DevLinkingArguments, Seq2SeqTrainingArguments):
    """``Seq2SeqTrainingArguments`` plus how stage-1 rows are built and how dev linking is scored."""

    # Targets
    target_top_k: int = field(default=3, metadata={"help": "Gold-concept names per mention, most TF-IDF-similar first (one row each)."})
    avoid_shared_targets: bool = field(default=True, metadata={"help": "Train on names unique to the gold concept when it has any: a name shared with other concepts cannot be linked unambiguously."})
    kb_rows: bool = field(default=True, metadata={"help": "Add KB synonym rows (name -> names of its concept) so unseen mentions can reach every KB name."})
    kb_target_top_k: int = field(default=2, metadata={"help": "Targets per KB synonym row (the name itself first)."})
    max_kb_names: int | None = field(default=None, metadata={"help": "Sample at most this many KB names as synonym-row sources (seeded); all when unset."})
    kb_names_per_concept: int | None = field(
        default=None,
        metadata={"help": "Instead of max_kb_names: sample at most this many names of every concept as synonym-row sources (seeded), so that every concept gets a row; a uniform sample of names misses most concepts that have few."},
    )
    # Input text
    max_context_words: int = field(default=64, metadata={"help": "Words of context kept on each side of the mention."})
    lowercase: bool = field(default=True, metadata={"help": "Lowercase inputs, prompts and KB names."})
    max_source_length: int = field(default=256, metadata={"help": "Encoder tokens; longer inputs are cut (and counted)."})
    # Model built from scratch
    model_size: str = field(default="small", metadata={"help": "Size preset when building from scratch: tiny, small or base."})
    tokenizer_vocab_size: int | None = field(default=None, metadata={"help": "BPE vocabulary when building from scratch (preset default when unset)."})
    # Defaults that differ from transformers'
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep prompt/target columns for the collator."})
    metric_for_best_model: str | None = field(default="acc@1", metadata={"help": "Dev metric that picks the best checkpoint."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Higher metric_for_best_model is better."})

    def __post_init__(self):
        # At parse time: the size is otherwise only looked up once the data is built.
        check_choice("model_size", self.model_size, tuple(SIZE_PRESETS))
        if self.kb_names_per_concept is not None and self.max_kb_names is not None:
            raise FieldError("kb_names_per_concept", "sample KB names either by max_kb_names or by kb_names_per_concept, not both")
        for name in AT_LEAST_ONE:
            check_at_least(name, getattr(self, name), 1)
        check_at_least("max_context_words", self.max_context_words, 0)
        super().__post_init__()
        check_early_stopping(self)
        check_final_eval_splits(self)
        check_dev_linking(self)
        pin_memory_only_with_an_accelerator(self)
