"""Stage 2: Direct Preference Optimization for encoder-decoder (BART-family) linkers.

TRL >= 0.29 ``DPOTrainer`` only handles causal LMs: given a BART it raises nothing and trains the
wrong objective. This trainer keeps TRL's configuration, losses and metric names but scores
sequences the encoder-decoder way: the encoder reads the mention in context, the decoder is fed
``<s> mention is`` + name, and a sequence's log-prob sums only the name tokens (+ EOS), tokenised
by :class:`~angel_trl.text.tokenization.SequenceEncoder` exactly as in stage 1 and in the trie.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from accelerate import PartialState
from accelerate.utils import is_peft_model
from datasets import Dataset
from transformers import Trainer

from angel_trl.progress import progress_bar, reports_progress
from angel_trl.trainers.collators import PromptedSeq2SeqCollator
from angel_trl.text.tokenization import SequenceEncoder
from angel_trl.trainers.linking_eval import LinkingEvalMixin, LinkingEvaluator
from angel_trl.trainers.permissions import UsualPermissionsMixin
from angel_trl.trainers.run_loss import WholeRunLossMixin
from angel_trl.trainers.seq2seq_dpo_config import Seq2SeqDPOConfig

logger = logging.getLogger(__name__)
SUPPORTED_LOSSES = ("sigmoid", "hinge", "ipo", "robust", "sft")
REQUIRED_COLUMNS = ("prompt", "decoder_prompt", "chosen", "rejected")


def refuse_causal_dpo_for_encoder_decoder(model) -> None:
    """Raise if an encoder-decoder model is about to be given to ``trl.DPOTrainer``."""
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        raise TypeError(
            "trl.DPOTrainer (>= 0.29) only supports decoder-only models and would silently train an encoder-decoder "
            "model on the wrong objective; use angel_trl.trainers.Seq2SeqDPOTrainer instead."
        )


def validate_preference_dataset(dataset: Dataset, name: str = "train_dataset") -> None:
    """Clear errors for data DPO cannot learn from: empty, missing columns, chosen == rejected."""
    if dataset is None or len(dataset) == 0:
        raise ValueError(f"{name} is empty: no preference pairs to train on (did mining find any?)")
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)} (see angel_trl.mining)")
    same = [i for i, (c, r) in enumerate(zip(dataset["chosen"], dataset["rejected"])) if c == r]
    if same:
        raise ValueError(f"{name}: {len(same)} pair(s) have chosen == rejected (first at row {same[0]}); DPO cannot learn from them")


def tokenize_pairs(dataset: Dataset, encoder: SequenceEncoder) -> tuple[Dataset, int]:
    """Add ``input_ids``, ``prompt_ids``, ``chosen_ids`` and ``rejected_ids`` (names + EOS); also
    return how many sources were cut to ``max_source_length``."""
    input_ids, truncated = encoder.sources(dataset["prompt"])
    columns = {
        "input_ids": input_ids,
        "prompt_ids": encoder.prompts(dataset["decoder_prompt"]),
        "chosen_ids": encoder.names(dataset["chosen"]),
        "rejected_ids": encoder.names(dataset["rejected"]),
    }
    for key, values in columns.items():
        if key in dataset.column_names:
            dataset = dataset.remove_columns(key)
        dataset = dataset.add_column(key, values)
    return dataset, truncated


@dataclass
class PreferenceCollator:
    """A batch of B pairs as 2B decoder sequences, chosen first: ``[chosen..., rejected...]``."""

    pad_token_id: int
    decoder_start_token_id: int

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        base = PromptedSeq2SeqCollator(self.pad_token_id, self.decoder_start_token_id)
        rows = [{"input_ids": f["input_ids"], "prompt_ids": f["prompt_ids"], "target_ids": f[key]} for key in ("chosen_ids", "rejected_ids") for f in features]
        batch = base(rows)
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.float32)
        return batch


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed log-prob of the unmasked label tokens of each row, plus per-token log-probs and mask."""
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"],
        use_cache=False,
    ).logits
    labels = batch["labels"]
    mask = labels != -100
    per_token = torch.gather(logits.float().log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    return per_token.sum(-1), per_token, mask


@contextmanager
def adapters_disabled(peft_model) -> Iterator[None]:
    """``peft_model`` acts as its base model, in eval mode like a separate reference (restored after)."""
    was_training = peft_model.training
    peft_model.eval()
    try:
        with peft_model.disable_adapter():
            yield
    finally:
        peft_model.train(was_training)


def dpo_losses(
    loss_types: Sequence[str],
    loss_weights: Sequence[float],
    beta: float,
    label_smoothing: float,
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_token_logps: torch.Tensor,
    chosen_mask: torch.Tensor,
    rejected_mask: torch.Tensor,
) -> torch.Tensor:
    """TRL's DPO loss family (same formulas as ``trl.DPOTrainer``), weighted and summed."""
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    delta = chosen_logratios - rejected_logratios
    loss = torch.zeros((), device=chosen_logps.device)
    for loss_type, weight in zip(loss_types, loss_weights, strict=True):
        if loss_type == "sigmoid":
            per_pair = -F.logsigmoid(beta * delta) * (1 - label_smoothing) - F.logsigmoid(-beta * delta) * label_smoothing
        elif loss_type == "hinge":
            per_pair = torch.relu(1 - beta * delta)
        elif loss_type == "ipo":
            # Normalised per completion token, as TRL does (confirmed there with the IPO authors).
            ipo_delta = chosen_logratios / chosen_mask.sum(-1).clamp(min=1) - rejected_logratios / rejected_mask.sum(-1).clamp(min=1)
            per_pair = (ipo_delta - 1 / (2 * beta)) ** 2
        elif loss_type == "robust":
            clean = -(1 - label_smoothing) * F.logsigmoid(beta * delta)
            flipped = -label_smoothing * F.logsigmoid(-beta * delta)
            per_pair = (clean - flipped) / (1 - 2 * label_smoothing)
        elif loss_type == "sft":
            per_pair = -chosen_token_logps[chosen_mask].mean().expand_as(delta)
        else:
            raise ValueError(f"loss_type {loss_type!r} is not supported for encoder-decoder DPO; choose from {SUPPORTED_LOSSES}")
        loss = loss + per_pair.mean() * weight
    return loss


def _loss_settings(args: Seq2SeqDPOConfig) -> tuple[list[str], list[float]]:
    """The loss types and their weights; raise for a loss or a setting encoder-decoder DPO cannot train with."""
    unknown = [t for t in args.loss_type if t not in SUPPORTED_LOSSES]
    if unknown:
        raise ValueError(f"loss_type {unknown} not supported for encoder-decoder DPO; choose from {SUPPORTED_LOSSES}")
    loss_types = list(args.loss_type)
    loss_weights = list(args.loss_weights or [1.0] * len(loss_types))
    if len(loss_weights) != len(loss_types):
        raise ValueError(f"{len(loss_weights)} loss_weights for {len(loss_types)} loss types")
    if "robust" in loss_types and not 0 <= args.label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5) for the robust loss, got {args.label_smoothing}")
    return loss_types, loss_weights


def _tokenize_splits(
    train_dataset: Dataset, eval_dataset: Dataset | None, encoder: SequenceEncoder,
) -> tuple[Dataset, Dataset | None, dict[str, int]]:
    """Both pair datasets tokenised, and how many sources of each were cut to ``max_source_length``."""
    train_dataset, truncated = tokenize_pairs(train_dataset, encoder)
    truncated_sources = {"train": truncated}
    if eval_dataset is not None:
        eval_dataset, truncated_sources["eval"] = tokenize_pairs(eval_dataset, encoder)
    return train_dataset, eval_dataset, truncated_sources


def _frozen_reference(model, ref_model, ref_is_base_model: bool):
    """``ref_model``, or a copy of ``model`` when it is None, frozen in eval mode; None when the
    reference is the PEFT policy's base model (no copy is made)."""
    if ref_model is None and not ref_is_base_model:
        ref_model = copy.deepcopy(model)
    if ref_model is not None:
        ref_model.eval().requires_grad_(False)
    return ref_model


class Seq2SeqDPOTrainer(UsualPermissionsMixin, WholeRunLossMixin, LinkingEvalMixin, Trainer):
    """DPO on (prompt, decoder_prompt, chosen, rejected) pairs for encoder-decoder models.

    The reference is ``ref_model`` (a frozen copy of the policy when None), or, with
    ``precompute_ref_log_probs``, its log-probs computed once before training (no second model
    in memory, one forward less per step). For a PEFT policy and no ``ref_model`` (TRL's way) the
    reference is the policy with its adapters disabled, i.e. the base model: no copy is made.
    That is the initial policy only when the adapters are new (LoRA's B starts at zero); pass
    ``ref_model`` to train further an adapter that was already trained.
    """

    def __init__(
        self,
        model,
        args: Seq2SeqDPOConfig,
        train_dataset: Dataset,
        processing_class,
        ref_model=None,
        eval_dataset: Dataset | None = None,
        linking_evaluator: LinkingEvaluator | None = None,
        callbacks=None,
    ):
        if not getattr(model.config, "is_encoder_decoder", False):
            raise TypeError("Seq2SeqDPOTrainer needs an encoder-decoder model; use trl.DPOTrainer for decoder-only models")
        self.loss_types, self.loss_weights = _loss_settings(args)
        validate_preference_dataset(train_dataset, "train_dataset")
        if eval_dataset is not None:
            validate_preference_dataset(eval_dataset, "eval_dataset")
        self.encoder = SequenceEncoder(processing_class, args.max_source_length)
        train_dataset, eval_dataset, self.truncated_sources = _tokenize_splits(train_dataset, eval_dataset, self.encoder)
        if any(self.truncated_sources.values()):
            logger.warning("pair sources cut to max_source_length=%d: %s", args.max_source_length, self.truncated_sources)
        if args.disable_dropout:
            _disable_dropout(model)
        self.collator = PreferenceCollator(processing_class.pad_token_id, model.config.decoder_start_token_id)
        self.precompute_ref = args.precompute_ref_log_probs
        self.ref_is_base_model = ref_model is None and is_peft_model(model)
        ref_model = _frozen_reference(model, ref_model, self.ref_is_base_model)
        super().__init__(model=model, args=args, data_collator=self.collator, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=processing_class, callbacks=callbacks)
        # BART's forward takes **kwargs, so the Trainer would think our loss is normalised by its
        # token count and skip dividing it by the accumulation steps; it is a mean over pairs (as in TRL).
        self.model_accepts_loss_kwargs = False
        # Under DDP/FSDP/DeepSpeed the reference is only moved to the device, not wrapped or sharded:
        # it takes no gradients, and every process scores its own batches with it. (accelerate skips
        # the move under FSDP unless asked: the reference would stay on the CPU.)
        self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True, device_placement=True) if ref_model is not None else None
        self.reference_device: str | None = None
        if self.precompute_ref:
            # After the Trainer has placed the model (and the reference) on the accelerator's device:
            # the pass runs there, under training's autocast, each process scoring its share (TRL's
            # ``_precompute_ref_logps``). Before ``super().__init__`` it would run on the CPU in fp32.
            self._precompute_reference()
        self.linking_evaluator = linking_evaluator
        self.beta = args.beta
        self.label_smoothing = args.label_smoothing
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def _precompute_reference(self) -> None:
        """Add the reference log-probs to the train (and eval) pairs, then take a separate reference
        off the device."""
        reference = self.model if self.ref_is_base_model else self.ref_model
        self.train_dataset = self.add_reference_logps(reference, self.train_dataset, self._precompute_batch_size(), "train")
        if self.eval_dataset is not None:
            self.eval_dataset = self.add_reference_logps(reference, self.eval_dataset, self._precompute_batch_size(), "eval")
        if not self.ref_is_base_model:
            # Not kept on the device: saves its memory and a forward per step. A dataset passed to
            # evaluate() later is scored with it, moved back for the pass.
            self._offloaded_ref = self.ref_model.to("cpu")
            self.ref_model = None

    @torch.no_grad()
    def reference_logps(self, ref_model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Summed log-probs of ``batch`` under the reference: ``ref_model``, or, when the reference is
        the base model, ``ref_model`` (the unwrapped PEFT policy) with its adapters disabled."""
        if not self.ref_is_base_model:
            return sequence_logps(ref_model, batch)[0]
        with adapters_disabled(ref_model):
            return sequence_logps(ref_model, batch)[0]

    def _precompute_batch_size(self) -> int:
        return self.args.precompute_ref_batch_size or self.args.per_device_train_batch_size

    def add_reference_logps(self, ref_model, dataset: Dataset, batch_size: int, split: str = "train") -> Dataset:
        """Columns ``ref_chosen_logps`` / ``ref_rejected_logps`` computed once with the reference, on
        the accelerator's device and under the training autocast, split across processes and gathered
        in dataset order. The device is recorded in ``self.reference_device``."""
        loader = self.accelerator.prepare(torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=self.collator, shuffle=False))
        chosen, rejected = [], []
        for batch in progress_bar(loader, show=reports_progress(self.args) and PartialState().is_local_main_process, desc=f"reference log-probs ({split} pairs)", unit="batch"):
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            with self.autocast_smart_context_manager():
                c, r = self.reference_logps(ref_model, batch).chunk(2)
            c, r = self.accelerator.gather_for_metrics((c.float(), r.float()))
            chosen.extend(c.tolist())
            rejected.extend(r.tolist())
        self.reference_device = str(self.accelerator.device)
        logger.info("reference log-probs of %d %s pairs computed on %s", len(chosen), split, self.reference_device)
        return dataset.add_column("ref_chosen_logps", chosen).add_column("ref_rejected_logps", rejected)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """As the Trainer's; a new dataset (raw or tokenised pairs) gets its reference log-probs first
        when they were precomputed for training."""
        if eval_dataset is not None and not isinstance(eval_dataset, dict):
            if "input_ids" not in eval_dataset.column_names:
                validate_preference_dataset(eval_dataset, "eval_dataset")
                eval_dataset, _ = tokenize_pairs(eval_dataset, self.encoder)
            if self.precompute_ref and "ref_chosen_logps" not in eval_dataset.column_names:
                if self.ref_is_base_model:
                    eval_dataset = self.add_reference_logps(self.accelerator.unwrap_model(self.model), eval_dataset, self._precompute_batch_size(), metric_key_prefix)
                else:
                    ref = self._offloaded_ref.to(self.accelerator.device)
                    try:
                        eval_dataset = self.add_reference_logps(ref, eval_dataset, self._precompute_batch_size(), metric_key_prefix)
                    finally:
                        self._offloaded_ref = ref.to("cpu")
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        logps, per_token, mask = sequence_logps(model, inputs)
        chosen_logps, rejected_logps = logps.chunk(2)
        chosen_tokens, _ = per_token.chunk(2)
        chosen_mask, rejected_mask = mask.chunk(2)
        if "ref_chosen_logps" in inputs:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            # Through the unwrapped policy when the reference is its base model: disable_adapter lives on the PeftModel.
            ref = self.accelerator.unwrap_model(model) if self.ref_is_base_model else self.ref_model
            ref_chosen, ref_rejected = self.reference_logps(ref, inputs).chunk(2)
        loss = dpo_losses(
            self.loss_types, self.loss_weights, self.beta, self.label_smoothing,
            chosen_logps, rejected_logps, ref_chosen, ref_rejected, chosen_tokens, chosen_mask, rejected_mask,
        )
        self._record(mode, chosen_logps.detach(), rejected_logps.detach(), ref_chosen, ref_rejected)
        return (loss, {"chosen_logps": chosen_logps, "rejected_logps": rejected_logps}) if return_outputs else loss

    def _record(self, mode, chosen_logps, rejected_logps, ref_chosen, ref_rejected) -> None:
        """TRL's metric names, averaged over the pairs between two logging steps. Per pair, not per
        batch: batches differ in size (the last one, the split across processes), and a mean of
        batch means would depend on the number of processes."""
        gather = self.accelerator.gather_for_metrics
        chosen_rewards = gather(self.beta * (chosen_logps - ref_chosen))
        rejected_rewards = gather(self.beta * (rejected_logps - ref_rejected))
        m = self._metrics[mode]
        m["rewards/chosen"].extend(chosen_rewards.tolist())
        m["rewards/rejected"].extend(rejected_rewards.tolist())
        m["rewards/accuracies"].extend((chosen_rewards > rejected_rewards).float().tolist())
        m["rewards/margins"].extend((chosen_rewards - rejected_rewards).tolist())
        m["logps/chosen"].extend(gather(chosen_logps).tolist())
        m["logps/rejected"].extend(gather(rejected_logps).tolist())

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "eval_" if mode == "eval" and any(k.startswith("eval_") for k in logs) else ""
        if prefix or mode == "train":
            for key, values in self._metrics[mode].items():
                if values:
                    logs[f"{prefix}{key}"] = sum(values) / len(values)
            self._metrics[mode].clear()
        super().log(logs, start_time)


_DROPOUT_ATTRS = ("dropout", "attention_dropout", "activation_dropout", "layerdrop")


def _disable_dropout(model) -> None:
    """Dropout off in the modules, so policy and reference log-probs are comparable. BART applies dropout with
    ``F.dropout(p=self.dropout)`` (floats on modules), not only through ``nn.Dropout`` modules."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for attr in _DROPOUT_ATTRS:
            if isinstance(getattr(module, attr, None), float):
                setattr(module, attr, 0.0)
    # ``model.config`` is left alone (as TRL's ``disable_dropout_in_model``): it is saved with the
    # stage-2 linker, and whoever fine-tunes that checkpoint next must get its dropout back.
