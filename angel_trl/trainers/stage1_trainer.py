"""Stage 1: ``Seq2SeqTrainer`` whose evaluation also scores dev linking with constrained decoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Seq2SeqTrainer

from angel_trl.trainers.linking_eval import LinkingEvalMixin, LinkingEvaluator
from angel_trl.trainers.permissions import UsualPermissionsMixin
from angel_trl.trainers.run_loss import WholeRunLossMixin


def token_mean_loss(outputs, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy summed over the label tokens (not -100) and divided by ``num_items_in_batch``,
    the Trainer's token count over the whole global batch (all processes and accumulation steps),
    or by this batch's count when it is not given.

    BART's own loss is a per-batch mean that ignores ``num_items_in_batch``, yet its ``forward``
    takes ``**kwargs``, so the Trainer believes it honours it: it then multiplies the loss by the
    number of processes and skips the division by the accumulation steps, and N processes (or N
    accumulation steps) train with N times the gradient of one.
    """
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    total = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten().to(logits.device), ignore_index=-100, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
    return total / count


class Stage1Trainer(UsualPermissionsMixin, WholeRunLossMixin, LinkingEvalMixin, Seq2SeqTrainer):
    """Positive-only training (``PromptedSeq2SeqCollator`` rows) with a token-mean loss that is the
    same for any number of processes (:func:`token_mean_loss`); see :class:`LinkingEvalMixin`."""

    def __init__(self, *args, linking_evaluator: LinkingEvaluator | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.linking_evaluator = linking_evaluator
        # The label smoother (label_smoothing_factor > 0) already divides by num_items_in_batch.
        if self.compute_loss_func is None and self.label_smoother is None:
            self.compute_loss_func = token_mean_loss
