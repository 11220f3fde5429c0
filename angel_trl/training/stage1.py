"""Stage 1 end to end: data -> rows -> model -> ``Stage1Trainer`` -> saved linker and scores."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from transformers import AutoTokenizer, EarlyStoppingCallback, TrainerCallback, set_seed

from angel_trl.trainers.collators import PromptedSeq2SeqCollator
from angel_trl.data.corpus import Corpus
from angel_trl.data.arguments import DataArguments
from angel_trl.errors import check_at_least
from angel_trl.evaluation import TrainingSeen
from angel_trl.text.examples import SKIP_COUNTS, ExampleConfig, Stage1Rows, build_kb_rows, build_stage1_rows
from angel_trl.linking.linker import EntityLinker, LinkerConfig
from angel_trl.modeling import SIZE_PRESETS, build_model, load_pretrained, train_tokenizer, warm_start
from angel_trl.data.kb import KnowledgeBase
from angel_trl.data.names import NameTable
from angel_trl.training.lora import LoraArguments, apply_lora
from angel_trl.training.finish import locked_output_dir, resume_arg, resumed_checkpoint, score_and_save
from angel_trl.text.tfidf import TfidfNameMatcher
from angel_trl.text.tokenization import SequenceEncoder
from angel_trl.trainers import LinkingEvaluator, Stage1Config, Stage1Trainer

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments(LoraArguments):
    """Which model to start from, and whether to train LoRA adapters on it (TRL's field names)."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "Any encoder-decoder checkpoint (BART, BioBART, T5, a saved bert2bert; local dir or Hub id); build from scratch when unset."})
    encoder_name_or_path: str | None = field(default=None, metadata={"help": "Warm-start an EncoderDecoderModel from this BERT-family encoder (SapBERT, PubMedBERT, ...) instead of model_name_or_path."})
    decoder_name_or_path: str | None = field(default=None, metadata={"help": "With encoder_name_or_path: the decoder's weights (default: the encoder's)."})
    decoder_layers: int | None = field(default=None, metadata={"help": "With encoder_name_or_path: keep only the decoder's first N layers (decoding cost is mostly the decoder)."})
    encoder_layers: int | None = field(default=None, metadata={"help": "With encoder_name_or_path: keep only the encoder's first N layers (small CPU budgets)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub (off unless you trust it)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least("decoder_layers", self.decoder_layers, 1)  # 0 layers: a model that cannot link
        check_at_least("encoder_layers", self.encoder_layers, 1)


def encode_rows(rows: Stage1Rows, encoder: SequenceEncoder) -> tuple[Dataset, int]:
    """Tokenised stage-1 rows (``input_ids``, ``prompt_ids``, ``target_ids``) and the truncation count."""
    input_ids, truncated = encoder.sources(rows.sources)
    return Dataset.from_dict(
        {
            "input_ids": input_ids,
            "prompt_ids": encoder.prompts(rows.prompts),
            "target_ids": encoder.names(rows.targets),
            "kind": rows.kinds,
        }
    ), truncated


def make_model(model_args: ModelArguments, config: Stage1Config, tokenizer_texts: list[str]):
    """Load ``model_name_or_path`` or build a tokenizer and a BART of ``config.model_size`` (a
    resumed run takes its checkpoint's tokenizer); with ``use_peft`` the model is wrapped with new LoRA adapters."""
    if model_args.encoder_name_or_path:
        model, tokenizer = warm_start(
            model_args.encoder_name_or_path, model_args.decoder_name_or_path, model_args.decoder_layers, model_args.encoder_layers, model_args.trust_remote_code
        )
    elif model_args.model_name_or_path:
        model, tokenizer = load_pretrained(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    else:
        if model_args.use_peft:
            # Low-rank updates of random weights cannot learn the task: LoRA is for a trained checkpoint.
            logger.warning("use_peft on a model built from scratch trains only adapters on random weights; set model_name_or_path")
        checkpoint = resumed_checkpoint(config.resume_from_checkpoint, config.output_dir)
        if checkpoint and (Path(checkpoint) / "tokenizer.json").exists():
            # The checkpoint's embeddings index the interrupted run's vocabulary: reuse it rather than
            # count on a new tokenizer training to come out the same (on another machine or version).
            tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        else:
            vocab = config.tokenizer_vocab_size or SIZE_PRESETS[config.model_size].vocab_size
            tokenizer = train_tokenizer(tokenizer_texts, vocab)
        model = build_model(config.model_size, tokenizer)
    return apply_lora(model, model_args), tokenizer


def train_stage1(
    data_args: DataArguments, model_args: ModelArguments, config: Stage1Config, train_corpus: Corpus | None = None, rows: Stage1Rows | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> dict:
    """Train stage 1, save model + tokenizer + linking artefacts in ``config.output_dir``, return scores.

    ``train_corpus`` replaces the configured train split (cross-fitting trains on part of it).
    ``rows`` (KB pre-training, :mod:`angel_trl.pretraining.training`) replaces the rows built from the train
    split and ``kb_rows``; the train split is then optional and only marks seen mentions.
    ``callbacks`` go to the Trainer. ``config.resume_from_checkpoint`` (a path, or ``true``/``last``)
    resumes an interrupted run.
    """
    with locked_output_dir(config):
        return _train_stage1(data_args, model_args, config, train_corpus, rows, callbacks)


def _train_stage1(
    data_args: DataArguments, model_args: ModelArguments, config: Stage1Config, train_corpus: Corpus | None = None, rows: Stage1Rows | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> dict:
    set_seed(config.seed)
    kb = data_args.load_kb()
    train, dev, test = (data_args.load_split(s) for s in ("train", "dev", "test"))
    train = train_corpus or train
    if train is None and rows is None:
        raise ValueError("stage 1 needs a train_file")
    table = NameTable.from_kb(kb, config.lowercase)
    matcher = TfidfNameMatcher(table)
    example_config = ExampleConfig(config.max_context_words, config.lowercase)

    if rows is None:
        rows = _train_rows(train, kb, table, matcher, example_config, config)
    model, tokenizer = make_model(model_args, config, table.names + rows.sources)
    encoder = SequenceEncoder(tokenizer, config.max_source_length, decoder_start_token_id=model.config.decoder_start_token_id)
    train_dataset, truncated = encode_rows(rows, encoder)
    summary: dict = {"kb": kb.stats(), "train_corpus": train.stats() if train else None, "rows": dict(rows.counts), "truncated_sources": {"train": truncated}, "parameters": model.num_parameters()}
    summary["trainable_parameters"] = model.num_parameters(only_trainable=True)  # fewer with LoRA
    logger.info("stage-1 data: %s", summary)
    if train is not None and train.mentions and not rows.counts["rows_mention"]:
        # Every training mention skipped (most often: gold ids from another KB): the model learns
        # KB names only, which is a run nobody asked for under this name.
        logger.warning("stage 1 trains on no mention of %s: of its %d mentions, %s; it learns from KB names only (is kb_path the KB the corpus is annotated with?)",
                       train.source, len(train.mentions), ", ".join(f"{rows.counts[k]} {k.removeprefix('skipped_').replace('_', ' ')}" for k in SKIP_COUNTS if rows.counts[k]) or "none usable")

    linker_config = _linker_config(config, data_args)
    linker = EntityLinker(model, tokenizer, table, config=linker_config, kb=kb)
    summary["trie_collisions"] = linker.trie.num_collisions  # names sharing another's token path (all reachable)
    summary["names_truncated"] = encoder.count_truncated_names(table.names)  # cut to max_name_tokens in the trie
    seen = TrainingSeen.of(train.mentions, kb) if train else None
    evaluator = None
    eval_dataset = None
    if dev is not None:
        eval_dataset, summary["truncated_sources"]["dev"], summary["dev_rows"] = _dev_rows(dev, kb, table, matcher, example_config, encoder, config)
        evaluator = _dev_evaluator(dev, linker, seen, config)
    elif config.eval_strategy != "no":
        raise ValueError("eval_strategy is set but there is no dev_file to evaluate on")
    if any(summary["truncated_sources"].values()):
        logger.warning("sources cut to max_source_length=%d: %s", config.max_source_length, summary["truncated_sources"])

    trainer = _stage1_trainer(model, tokenizer, config, train_dataset, eval_dataset, evaluator, callbacks)
    train_result = trainer.train(resume_from_checkpoint=resume_arg(config.resume_from_checkpoint))
    summary["train"] = train_result.metrics

    return score_and_save(trainer, linker, kb, {"dev": dev, "test": test}, seen, summary, "stage1_results.json")


def _train_rows(
    train: Corpus, kb: KnowledgeBase, table: NameTable, matcher: TfidfNameMatcher, example_config: ExampleConfig, config: Stage1Config,
) -> Stage1Rows:
    """Stage-1 rows from the train split, plus rows from the KB's own names with ``kb_rows``."""
    rows = build_stage1_rows(train, kb, table, matcher, example_config, config.target_top_k, avoid_shared=config.avoid_shared_targets)
    if config.kb_rows:
        build_kb_rows(table, matcher, example_config, config.kb_target_top_k, config.max_kb_names, config.seed, rows, config.avoid_shared_targets, config.kb_names_per_concept)
    return rows


def _linker_config(config: Stage1Config, data_args: DataArguments) -> LinkerConfig:
    """How the trained linker links, saved with it: the training run's settings."""
    return LinkerConfig(
        num_beams=config.link_num_beams,
        top_k=config.link_top_k,
        batch_size=config.link_batch_size,
        max_source_length=config.max_source_length,
        max_context_words=config.max_context_words,
        lowercase=config.lowercase,
        expand_abbreviations=bool(data_args.expand_abbreviations),
    )


def _dev_rows(
    dev: Corpus, kb: KnowledgeBase, table: NameTable, matcher: TfidfNameMatcher, example_config: ExampleConfig, encoder: SequenceEncoder,
    config: Stage1Config,
) -> tuple[Dataset, int, dict]:
    """The tokenised dev rows (one target per mention) for eval loss, their truncation count and row counts."""
    dev_rows = build_stage1_rows(dev, kb, table, matcher, example_config, top_k=1, avoid_shared=config.avoid_shared_targets)
    eval_dataset, truncated = encode_rows(dev_rows, encoder)
    return eval_dataset, truncated, dict(dev_rows.counts)


def _dev_evaluator(dev: Corpus, linker: EntityLinker, seen: TrainingSeen | None, config: Stage1Config) -> LinkingEvaluator:
    """Links the dev mentions with ``linker`` at each evaluation."""
    dev_mentions = dev.mentions
    inputs = linker.inputs_for(dev_mentions, dev.texts())
    return LinkingEvaluator(dev_mentions, inputs, linker.kb, linker.table, linker.trie, linker.config, seen, config.max_eval_mentions, config.seed)


def _stage1_trainer(
    model, tokenizer, config: Stage1Config, train_dataset: Dataset, eval_dataset: Dataset | None, evaluator: LinkingEvaluator | None,
    callbacks: list[TrainerCallback] | None,
) -> Stage1Trainer:
    """The ``Stage1Trainer`` on the encoded rows, with early stopping when ``early_stopping_patience`` is set."""
    if config.early_stopping_patience is not None:
        callbacks = [*(callbacks or []), EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)]
    return Stage1Trainer(
        model=model,
        args=config,
        data_collator=PromptedSeq2SeqCollator(tokenizer.pad_token_id, model.config.decoder_start_token_id),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        linking_evaluator=evaluator,
        callbacks=callbacks,
    )
