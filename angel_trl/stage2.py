"""Stage 2 end to end: a stage-1 linker + mined pairs -> ``Seq2SeqDPOTrainer`` -> saved linker and scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset, load_from_disk
from transformers import set_seed

from .data import DataArguments
from .evaluation import seen_mention_texts
from .linking import EntityLinker
from .modeling import load_pretrained
from .runs import score_and_save
from .trainers import LinkingEvaluator, Seq2SeqDPOConfig, Seq2SeqDPOTrainer


@dataclass
class Stage2Arguments:
    """The stage-1 linker and the preference pairs."""

    stage1_model: str = field(metadata={"help": "Stage-1 output directory (model, tokenizer, trie, names) or Hub id; also the DPO reference."})
    train_pairs: str = field(metadata={"help": "Preference pairs: a `save_to_disk` directory (recipes/mine.py) or a Hub dataset id."})
    dev_pairs: str | None = field(default=None, metadata={"help": "Dev preference pairs for eval loss and reward accuracy (needed when eval_strategy is not 'no')."})


def load_pairs(path_or_id: str) -> Dataset:
    """Pairs saved by ``recipes/mine.py`` (``save_to_disk``) or a Hub dataset id (its train split)."""
    if Path(path_or_id).exists():
        return load_from_disk(path_or_id)
    return load_dataset(path_or_id, split="train")


def train_stage2(data_args: DataArguments, stage2_args: Stage2Arguments, config: Seq2SeqDPOConfig) -> dict:
    """Train stage 2, save the linker (model, tokenizer, trie, names, KB) in ``config.output_dir``, return scores."""
    set_seed(config.seed)
    linker = EntityLinker.from_pretrained(stage2_args.stage1_model)
    kb = linker.kb or data_args.load_kb()
    linker.kb = kb
    linker.config.num_beams, linker.config.top_k, linker.config.batch_size = config.link_num_beams, config.link_top_k, config.link_batch_size
    config.max_source_length = linker.config.max_source_length  # tokenise exactly as stage 1 did
    train, dev, test = (data_args.load_split(s) for s in ("train", "dev", "test"))
    seen = seen_mention_texts(train.mentions) if train else None
    ref_model = None if config.precompute_ref_log_probs else load_pretrained(stage2_args.stage1_model)[0]
    evaluator = None
    if dev is not None:
        evaluator = LinkingEvaluator(dev.mentions, linker.inputs_for(dev.mentions, dev.texts()), kb, linker.table, linker.trie, linker.config, seen, config.max_eval_mentions)
    train_pairs = load_pairs(stage2_args.train_pairs)
    dev_pairs = load_pairs(stage2_args.dev_pairs) if stage2_args.dev_pairs else None
    trainer = Seq2SeqDPOTrainer(
        model=linker.model,
        ref_model=ref_model,
        args=config,
        train_dataset=train_pairs,
        eval_dataset=dev_pairs,
        processing_class=linker.tokenizer,
        linking_evaluator=evaluator,
    )
    summary: dict = {"pairs": len(train_pairs), "dev_pairs": len(dev_pairs) if dev_pairs is not None else 0}
    summary["train"] = trainer.train(resume_from_checkpoint=config.resume_from_checkpoint).metrics
    return score_and_save(trainer, linker, kb, {"dev": dev, "test": test}, seen, summary, "stage2_results.json")
