"""Stage 1: ``Seq2SeqTrainer`` whose evaluation also scores dev linking with constrained decoding."""

from __future__ import annotations

from transformers import Seq2SeqTrainer

from .linking_eval import LinkingEvalMixin, LinkingEvaluator


class Stage1Trainer(LinkingEvalMixin, Seq2SeqTrainer):
    """Positive-only training (``PromptedSeq2SeqCollator`` rows); see :class:`LinkingEvalMixin`."""

    def __init__(self, *args, linking_evaluator: LinkingEvaluator | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.linking_evaluator = linking_evaluator
