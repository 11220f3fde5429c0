"""Scoring dev linking (constrained decoding) inside a Trainer's evaluation, split across processes."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from transformers.distributed.fsdp import is_fsdp_managed_module
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from transformers.trainer_utils import EvalLoopOutput

from angel_trl.data.corpus import Mention
from angel_trl.evaluation import TrainingSeen, evaluate_linking
from angel_trl.data.kb import KnowledgeBase
from angel_trl.linking.linker import EntityLinker, LinkerConfig, LinkingResult, LinkInput
from angel_trl.data.names import NameTable
from angel_trl.linking.trie import NameTrie

logger = logging.getLogger(__name__)


def is_sharded(model) -> bool:
    """Whether ``model``'s weights are split across processes (FSDP, DeepSpeed ZeRO-3): every forward
    is then a collective, so all processes must run the same number of decoding steps."""
    return is_deepspeed_zero3_enabled() or is_fsdp_managed_module(model)


@contextlib.contextmanager
def full_params_for_generation(model) -> Iterator[None]:
    """FSDP1 keeps the root's weights (embeddings, LM head) sharded outside its own ``forward``, and
    ``generate`` bypasses it: gather them for the duration, as ``Seq2SeqTrainer`` does. FSDP2 needs
    nothing here (the Trainer registers ``generate`` as an FSDP forward method), nor does DDP."""
    if torch.distributed.is_available():
        from torch.distributed.fsdp import FullyShardedDataParallel

        if isinstance(model, FullyShardedDataParallel):
            with FullyShardedDataParallel.summon_full_params(model, writeback=False):
                yield
            return
    yield


def link_across_processes(linker: EntityLinker, inputs: Sequence[LinkInput | str], show_progress: bool = False) -> list[LinkingResult]:
    """``linker.link(inputs)`` with the inputs split across the processes of an ``accelerate launch``
    and the results gathered back in order on every process: N processes decode 1/N each and all
    get what one process would (scores within float noise: batches are padded differently).

    Must be called on every process (the gather is collective). With sharded weights each process
    gets the same number of inputs (the last one repeated, then dropped) so all run the same number
    of ``generate`` calls; ``generate`` then syncs its steps across processes by itself
    (``synced_gpus`` defaults to on for FSDP and ZeRO-3).
    """
    state = PartialState()
    if state.num_processes == 1 or not inputs:
        with full_params_for_generation(linker.model):
            return linker.link(inputs, show_progress=show_progress)
    with state.split_between_processes(list(range(len(inputs))), apply_padding=is_sharded(linker.model)) as mine:
        logger.info("linking %d of %d inputs on process %d/%d", len(mine), len(inputs), state.process_index, state.num_processes)
        with full_params_for_generation(linker.model):
            local = list(zip(mine, linker.link([inputs[i] for i in mine], show_progress=show_progress)))
    by_index = dict(gather_object(local))  # padding repeats the last index: it collapses here
    return [by_index[i] for i in range(len(inputs))]


@dataclass
class LinkingEvaluator:
    """Dev mentions and the linking artefacts needed to score a model during training."""

    mentions: Sequence[Mention]
    inputs: Sequence[LinkInput]
    kb: KnowledgeBase
    table: NameTable
    trie: NameTrie
    config: LinkerConfig
    seen: TrainingSeen | None = None
    max_mentions: int | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        # A seeded random sample, not the first n: dev files are ordered by document, so the first
        # 400 mentions are a few dozen abstracts and their topics, not the dev set.
        self.subset = dev_subset(len(self.mentions), self.max_mentions, self.seed)

    def __call__(self, model, tokenizer) -> dict:
        """Metrics of a seeded sample of ``max_mentions`` dev mentions (all when unset); under several
        processes each decodes its share and every process returns the same metrics (call it on all)."""
        linker = EntityLinker(model, tokenizer, self.table, self.trie, self.config, self.kb)
        results = link_across_processes(linker, [self.inputs[i] for i in self.subset])
        metrics, _ = evaluate_linking([self.mentions[i] for i in self.subset], results, self.kb, self.seen)
        return metrics


def dev_subset(n: int, max_mentions: int | None, seed: int) -> list[int]:
    """Indices of ``max_mentions`` of ``n`` mentions drawn with ``seed``, in corpus order (all when unset or not fewer)."""
    if not max_mentions or max_mentions >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), max_mentions))


class LinkingEvalMixin:
    """Adds constrained-decoding dev scores (``eval_acc@1``, ``eval_acc@5``, seen/unseen) to a
    Trainer's evaluation, so ``metric_for_best_model="acc@1"`` keeps the checkpoint that links
    best rather than the one with the lowest loss. Set ``self.linking_evaluator``.

    The Trainer evaluates on every process and picks the best checkpoint on every process, so each
    needs the same metric: the evaluator splits the dev mentions and gathers the results.
    ``self.model`` is the bare model under DDP and DeepSpeed and the FSDP-wrapped one under FSDP
    (see :func:`full_params_for_generation`).
    """

    linking_evaluator: LinkingEvaluator | None = None

    def _issue_warnings_after_load(self, load_result) -> None:
        """The Trainer's warning on reloading a checkpoint, without the tied weights.

        A checkpoint stores a tied weight once (``model.shared``); its tied copies (the embeddings and
        ``lm_head``) are reported missing, because transformers 5 leaves ``_keys_to_ignore_on_save``
        empty, although ``load_state_dict`` left them tied to the weight it loaded. Any other missing
        key is still warned about."""
        tied = set(getattr(self.model, "all_tied_weights_keys", None) or {})
        super()._issue_warnings_after_load(load_result._replace(missing_keys=[k for k in load_result.missing_keys if k not in tied]))

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval") -> EvalLoopOutput:
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.linking_evaluator is not None and metric_key_prefix == "eval":
            link_metrics = self.linking_evaluator(self.model, self.processing_class)
            output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in link_metrics.items()})
        return output
