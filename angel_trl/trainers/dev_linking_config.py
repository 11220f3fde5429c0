"""Dev linking during training, shared by both stages' configs: beams, top-k, the dev sample, early
stopping; and the one device setting both fix the same way (pinned memory)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from angel_trl.defaults import check_beams
from angel_trl.errors import FieldError, check_at_least

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


def pin_memory_only_with_an_accelerator(args: TrainingArguments) -> None:
    """Turn ``dataloader_pin_memory`` (the Trainer's default: on) off where there is no accelerator to
    copy to: pinning does nothing there, and torch warns about it for every dataloader (each dev
    evaluation makes one), burying a CPU run's log lines."""
    if args.dataloader_pin_memory and not torch.accelerator.is_available():  # (use_cpu: transformers turns it off itself)
        args.dataloader_pin_memory = False


def check_dev_linking(args: TrainingArguments) -> None:
    """Dev decoding settings that cannot work (no beam, no mention), or could not give full top-k
    lists (``acc@k`` would be computed on fewer)."""
    for name in ("link_num_beams", "link_top_k", "link_batch_size", "max_eval_mentions"):
        check_at_least(name, getattr(args, name), 1)
    try:
        check_beams(args.link_num_beams, args.link_top_k, ("link_num_beams", "link_top_k"))
    except ValueError as e:  # (its message names both fields)
        raise FieldError("link_top_k", str(e)) from None


def check_final_eval_splits(args: TrainingArguments) -> None:
    unknown = set(args.final_eval_splits) - {"dev", "test"}
    if unknown:
        raise FieldError("final_eval_splits", f"takes dev and/or test, not {sorted(unknown)}")


def check_early_stopping(args: TrainingArguments) -> None:
    """Refuse ``early_stopping_patience`` where it cannot work, at configuration time: transformers'
    ``EarlyStoppingCallback`` only asserts when training starts, and without ``load_best_model_at_end``
    a stopped run would keep its last (non-improving) weights."""
    patience = args.early_stopping_patience
    if patience is None:
        return
    check_at_least("early_stopping_patience", patience, 1)
    if args.eval_strategy == "no" or not args.load_best_model_at_end:
        raise FieldError("early_stopping_patience", "needs evaluations and the best checkpoint kept: set eval_strategy (steps or epoch) and load_best_model_at_end true")


@dataclass(kw_only=True)
class DevLinkingArguments:
    """How a training run links dev mentions (constrained decoding) to pick and keep checkpoints,
    and what it scores in full at the end; mixed into :class:`Stage1Config` and
    :class:`Seq2SeqDPOConfig` as ``LoraArguments`` is."""

    link_num_beams: int = field(default=10, metadata={"help": "Beams of constrained decoding at evaluation."})
    link_top_k: int = field(default=5, metadata={"help": "Distinct concepts kept per mention."})
    link_batch_size: int = field(default=32, metadata={"help": "Mentions per constrained-decoding batch."})
    max_eval_mentions: int | None = field(default=None, metadata={"help": "Score only this many dev mentions during training (final_eval_splits decides what is scored in full at the end)."})
    final_eval_splits: list[str] = field(default_factory=lambda: ["dev", "test"], metadata={"help": FINAL_EVAL_SPLITS_HELP})
    early_stopping_patience: int | None = field(default=None, metadata={"help": EARLY_STOPPING_HELP})
