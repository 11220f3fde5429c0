"""Stage 2 end to end: a stage-1 linker + mined pairs -> ``Seq2SeqDPOTrainer`` -> saved linker and scores."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import EarlyStoppingCallback, TrainerCallback, set_seed

from angel_trl.data.arguments import DataArguments
from angel_trl.data.files import SAVED_DATASET, SAVED_DATASET_DICT
from angel_trl.errors import FieldError, check_at_least
from angel_trl.evaluation import TrainingSeen
from angel_trl.linking.linker import EntityLinker, resolve_linker_dir
from angel_trl.modeling import load_pretrained
from angel_trl.training.lora import LoraArguments, apply_lora
from angel_trl.training.finish import locked_output_dir, resume_arg, score_and_save
from angel_trl.trainers import LinkingEvaluator, Seq2SeqDPOConfig, Seq2SeqDPOTrainer

logger = logging.getLogger(__name__)

STAGE2_RESULTS = "stage2_results.json"


@dataclass
class Stage2Arguments(LoraArguments):
    """The stage-1 linker and the preference pairs; with ``use_peft`` the policy is the stage-1 model
    plus new LoRA adapters and the reference is the same model with its adapters disabled."""

    stage1_model: str = field(metadata={"help": "Stage-1 output directory (model, tokenizer, trie, names) or Hub id; also the DPO reference."})
    train_pairs: str = field(metadata={"help": "Preference pairs: a `save_to_disk` directory (recipes/mine.py) or a Hub dataset id (its train split)."})
    dev_pairs: str | None = field(default=None, metadata={"help": "Dev preference pairs for eval loss and reward accuracy (needed when eval_strategy is not 'no'); a Hub id gives its dev split."})
    max_train_pairs: int | None = field(default=None, metadata={"help": "Train on a random sample (seeded by `seed`) of this many pairs; all when unset. KB pre-training pairs run to hundreds of thousands."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least("max_train_pairs", self.max_train_pairs, 1)

    def check_files(self) -> None:
        """Raise :class:`FieldError` for a pairs path that :func:`load_pairs` could not read (the recipe
        calls it before any model loads)."""
        check_pairs_path("train_pairs", self.train_pairs, "train")
        if self.dev_pairs is not None:
            check_pairs_path("dev_pairs", self.dev_pairs, "dev")
            if Path(self.dev_pairs).resolve() == Path(self.train_pairs).resolve():
                logger.warning("dev_pairs is train_pairs (%s): the eval loss and reward accuracy are measured on the pairs trained on", self.train_pairs)


def _could_be_hub_id(name: str) -> bool:
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _saved_splits(path: Path) -> list[str]:
    """The splits a saved DatasetDict lists ([] when its dataset_dict.json cannot be read)."""
    try:
        splits = json.loads((path / SAVED_DATASET_DICT).read_text()).get("splits")
    except (OSError, ValueError, AttributeError):
        return []
    return splits if isinstance(splits, list) else []


def _is_saved(path: Path) -> bool:
    return (path / SAVED_DATASET).is_file() or (path / SAVED_DATASET_DICT).is_file()


def _what_to_give(path: Path, split: str) -> str:
    """For a folder that is not a saved dataset: which folder of it to give instead, if any."""
    try:
        held = sorted(d.name for d in path.iterdir() if d.is_dir() and _is_saved(d))
    except OSError:  # an unreadable folder: nothing to suggest
        held = []
    if not held:
        return f"give a folder that save_to_disk wrote (recipes/mine.py: <output_dir>/{split}; recipes/pretrain.py: pairs_dir)"
    give = f"give {path / split}" if split in held else f"give one of them, e.g. {path / held[0]}"
    return f"{path} holds {' and '.join(f'{name}/' for name in held)}: {give}"


def _check_not_empty(field: str, path: Path) -> None:
    """A split that mining left without a pair is saved without a data file, which ``datasets``
    cannot load (an IndexError deep inside it): say so, and where mining said why."""
    try:
        files = json.loads((path / SAVED_DATASET).read_text()).get("_data_files")
    except (OSError, ValueError, AttributeError):
        return  # not ours to judge: load_from_disk reports it
    if files == []:
        summary = path.parent / "mining_summary.json"
        why = f"; {summary} counts what happened to its mentions" if summary.is_file() else ""
        raise FieldError(field, f"{path} holds no pairs (mining found none){why}")


def check_pairs_path(field: str, path_or_id: str, split: str) -> None:
    """Raise :class:`FieldError` unless ``path_or_id`` is a folder that ``save_to_disk`` wrote (a
    DatasetDict holding ``split``), or, when no such path exists, could be a Hub dataset id."""
    path = Path(path_or_id)
    if not path.exists():
        if not _could_be_hub_id(path_or_id):
            raise FieldError(field, f"{path_or_id}: no such folder (nor a Hub dataset id)")
        return
    if path.is_file():
        raise FieldError(field, f"{path}: a file, not the folder that save_to_disk writes")
    if (path / SAVED_DATASET).is_file():
        _check_not_empty(field, path)
        return
    if (path / SAVED_DATASET_DICT).is_file():
        splits = _saved_splits(path)
        if split not in splits:
            raise FieldError(field, f"{path}: a saved DatasetDict without a {split!r} split (it has {', '.join(splits) or 'none'})")
        _check_not_empty(field, path / split)
        return
    raise FieldError(field, f"{path} is not a saved dataset (no {SAVED_DATASET} or {SAVED_DATASET_DICT}); {_what_to_give(path, split)}")


def load_pairs(path_or_id: str, split: str = "train") -> Dataset:
    """Pairs saved by ``recipes/mine.py`` (a ``save_to_disk`` directory; ``split`` of a saved
    ``DatasetDict``), or ``split`` of a Hub dataset id such as ``hub.push_pairs`` writes."""
    if Path(path_or_id).exists():
        pairs = load_from_disk(path_or_id)
        return pairs[split] if isinstance(pairs, DatasetDict) else pairs
    return load_dataset(path_or_id, split=split)


def check_pairs_match_linker(pairs: Dataset, linker: EntityLinker, kb, field: str) -> None:
    """Raise :class:`FieldError` on ``field`` when pairs name a chosen name the stage-1 linker's trie
    does not hold, or a concept its KB does not have: pairs mined with another model or KB would
    train, without a word, towards names the linker can never decode. (A rejected name may be a
    training mention's text, with the hybrid's negatives: only its concept id is checked.)"""
    names = set(linker.table.names)
    for i, row in enumerate(pairs.select_columns([c for c in ("chosen", "gold_ids", "rejected_id") if c in pairs.column_names])):
        unknown = [f"concept {cid!r}" for cid in [*(row.get("gold_ids") or []), row.get("rejected_id")] if cid is not None and kb.canonical_id(cid) is None]
        if row["chosen"] not in names or unknown:
            what = f"chosen name {row['chosen']!r}" if row["chosen"] not in names else unknown[0]
            raise FieldError(field, f"pair {i} names a {what} that the stage-1 model's KB does not have: pairs mined with another model or KB? Mine them with this stage-1 model")


def sample_pairs(pairs: Dataset, max_pairs: int | None, seed: int) -> Dataset:
    """A seeded random sample of ``max_pairs`` pairs (all of them, in order, when unset or not fewer)."""
    if max_pairs is None or max_pairs >= len(pairs):
        return pairs
    if max_pairs < 1:
        raise ValueError(f"max_train_pairs must be at least 1, got {max_pairs}")
    # A random sample, not the first rows: mined and KB pairs are written grouped by mention / concept.
    # Flattened in memory: otherwise the trainer's add_column flattens the indices into a cache file
    # written inside the input pairs directory.
    sample = pairs.shuffle(seed=seed, keep_in_memory=True).select(range(max_pairs), keep_in_memory=True)
    return sample.flatten_indices(keep_in_memory=True)


def train_stage2(data_args: DataArguments, stage2_args: Stage2Arguments, config: Seq2SeqDPOConfig, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Train stage 2, save the linker (model, tokenizer, trie, names, KB) in ``config.output_dir``, return scores.

    ``callbacks`` go to the Trainer. ``config.resume_from_checkpoint`` (a path, or ``true``/``last``)
    resumes an interrupted run."""
    with locked_output_dir(config):
        return _train_stage2(data_args, stage2_args, config, callbacks)


def _train_stage2(data_args: DataArguments, stage2_args: Stage2Arguments, config: Seq2SeqDPOConfig, callbacks: list[TrainerCallback] | None = None) -> dict:
    set_seed(config.seed)
    # A Hub id is downloaded once: policy and reference then load the same snapshot.
    stage1_dir = resolve_linker_dir(stage2_args.stage1_model)
    linker = EntityLinker.from_pretrained(stage1_dir)
    if data_args.kb_path:
        linker = linker.over_kb(data_args.load_kb())  # decode over the KB the gold ids come from, as mine and evaluate do
    kb = linker.kb or data_args.load_kb()  # a linker saved without its KB and no kb_path: load_kb says what is missing
    linker.kb = kb
    linker.config.num_beams, linker.config.top_k, linker.config.batch_size = config.link_num_beams, config.link_top_k, config.link_batch_size
    # Tokenise exactly as stage 1 did: a prompt cut elsewhere would not be the one its beam scored.
    default = next(f.default for f in fields(Seq2SeqDPOConfig) if f.name == "max_source_length")
    if config.max_source_length not in (default, linker.config.max_source_length):
        logger.warning("max_source_length %d is replaced by the stage-1 linker's %d: stage 2 tokenises its prompts as stage 1 did", config.max_source_length, linker.config.max_source_length)
    config.max_source_length = linker.config.max_source_length
    data_args = data_args.following_linker(linker.config.expand_abbreviations)
    linker.config.expand_abbreviations = data_args.expand_abbreviations
    train, dev, test = (data_args.load_split(s) for s in ("train", "dev", "test"))
    seen = TrainingSeen.of(train.mentions, kb) if train else None
    linker.model = apply_lora(linker.model, stage2_args)
    # With LoRA the reference is the policy with adapters disabled: no second copy of the model.
    ref_model = None if config.precompute_ref_log_probs or stage2_args.use_peft else load_pretrained(str(stage1_dir))[0]
    evaluator = None
    if dev is not None:
        evaluator = LinkingEvaluator(dev.mentions, linker.inputs_for(dev.mentions, dev.texts()), kb, linker.table, linker.trie, linker.config, seen, config.max_eval_mentions, config.seed)
    train_pairs = load_pairs(stage2_args.train_pairs)
    check_pairs_match_linker(train_pairs, linker, kb, "train_pairs")
    available = len(train_pairs)
    train_pairs = sample_pairs(train_pairs, stage2_args.max_train_pairs, config.seed)
    dev_pairs = load_pairs(stage2_args.dev_pairs, split="dev") if stage2_args.dev_pairs else None
    if dev_pairs is not None:
        check_pairs_match_linker(dev_pairs, linker, kb, "dev_pairs")
    if config.early_stopping_patience is not None:
        # Patience counts stage-2 evaluations only; the starting model (keep_start_if_best) competes once, at the end.
        callbacks = [*(callbacks or []), EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)]
    trainer = Seq2SeqDPOTrainer(
        model=linker.model,
        ref_model=ref_model,
        args=config,
        train_dataset=train_pairs,
        eval_dataset=dev_pairs,
        processing_class=linker.tokenizer,
        linking_evaluator=evaluator,
        callbacks=callbacks,
    )
    summary: dict = {"pairs": len(train_pairs), "pairs_available": available, "dev_pairs": len(dev_pairs) if dev_pairs is not None else 0, "truncated_sources": trainer.truncated_sources}
    resume = resume_arg(config.resume_from_checkpoint)
    # "Keep the best" includes the starting point: DPO can lower dev accuracy at every checkpoint.
    start = trainer.evaluate() if config.keep_start_if_best and evaluator is not None and config.load_best_model_at_end and not resume else None
    summary["train"] = trainer.train(resume_from_checkpoint=resume).metrics
    if start is not None:
        start_metric = start.get(f"eval_{config.metric_for_best_model}")
        summary["start_dev_metric"] = start_metric
        best = trainer.state.best_metric
        if start_metric is not None and (best is None or (start_metric > best if config.greater_is_better else start_metric < best)):
            logger.warning("no stage-2 checkpoint beat the starting model on dev %s (%.4f vs %s): keeping the starting model", config.metric_for_best_model, start_metric, best)
            summary["kept_start_model"] = True
            trainer.model = linker.model = load_pretrained(str(stage1_dir))[0].to(trainer.args.device)
    return score_and_save(trainer, linker, kb, {"dev": dev, "test": test}, seen, summary, STAGE2_RESULTS)
