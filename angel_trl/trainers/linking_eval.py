"""Scoring dev linking (constrained decoding) inside a Trainer's evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers.trainer_utils import EvalLoopOutput

from ..corpus import Mention
from ..evaluation import evaluate_linking
from ..kb import KnowledgeBase
from ..linking import EntityLinker, LinkerConfig, LinkInput
from ..names import NameTable
from ..trie import NameTrie


@dataclass
class LinkingEvaluator:
    """Dev mentions and the linking artefacts needed to score a model during training."""

    mentions: Sequence[Mention]
    inputs: Sequence[LinkInput]
    kb: KnowledgeBase
    table: NameTable
    trie: NameTrie
    config: LinkerConfig
    seen_texts: set[str] | None = None
    max_mentions: int | None = None

    def __call__(self, model, tokenizer) -> dict:
        n = self.max_mentions or len(self.mentions)
        linker = EntityLinker(model, tokenizer, self.table, self.trie, self.config, self.kb)
        results = linker.link(self.inputs[:n])
        metrics, _ = evaluate_linking(self.mentions[:n], results, self.kb, self.seen_texts)
        return metrics


class LinkingEvalMixin:
    """Adds constrained-decoding dev scores (``eval_acc@1``, ``eval_acc@5``, seen/unseen) to a
    Trainer's evaluation, so ``metric_for_best_model="acc@1"`` keeps the checkpoint that links
    best rather than the one with the lowest loss. Set ``self.linking_evaluator``."""

    linking_evaluator: LinkingEvaluator | None = None

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval") -> EvalLoopOutput:
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.linking_evaluator is not None and metric_key_prefix == "eval":
            link_metrics = self.linking_evaluator(self.model, self.processing_class)
            output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in link_metrics.items()})
        return output
