"""The KB pre-training run (ANGEL_PT), positive-only: build (or resume) the corpus, then train stage 1 on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from angel_trl.data.arguments import DataArguments
from angel_trl.data.files import atomic_save_dataset, write_json
from angel_trl.errors import FieldError
from angel_trl.pretraining.corpus import PretrainCorpusConfig
from angel_trl.pretraining.shards import PretrainCorpusBuilder, load_positive_rows, load_pretrain_split
from angel_trl.progress import reports_progress
from angel_trl.text.examples import ExampleConfig, Stage1Rows

if TYPE_CHECKING:  # stage 1 imports torch: loaded only when training, not to build a corpus
    from accelerate import PartialState

    from angel_trl.trainers import Stage1Config
    from angel_trl.training.stage1 import ModelArguments


def train_pretrain(data_args: DataArguments, model_args: ModelArguments, corpus_config: PretrainCorpusConfig, config: Stage1Config) -> dict:
    """KB pre-training, positive-only: build (or resume) the corpus of ``data_args``' KB, save the
    pairs if asked, then train through stage 1 (``train_stage1`` with the corpus rows) and save a
    linker in ``config.output_dir`` that stage 1 (``model_name_or_path``) or stage 2
    (``stage1_model``) starts from. Dev/test files, if set, give zero-shot scores; a train file only
    splits them into seen / unseen mentions."""
    from angel_trl.training.finish import locked_output_dir

    for field, folder in (("pairs_dir", corpus_config.pairs_dir), ("corpus_dir", corpus_config.corpus_dir)):
        if folder and Path(folder).resolve() == Path(config.output_dir).resolve():
            raise FieldError(field, f"is output_dir ({config.output_dir}): the model would be saved over it; give it a folder of its own")
    with locked_output_dir(config):
        return _train_pretrain(data_args, model_args, corpus_config, config)


def _train_pretrain(data_args: DataArguments, model_args: ModelArguments, corpus_config: PretrainCorpusConfig, config: Stage1Config) -> dict:
    from accelerate import PartialState

    from angel_trl.training.stage1 import train_stage1

    state = PartialState()
    builder = PretrainCorpusBuilder(data_args.load_kb(), corpus_config, ExampleConfig(config.max_context_words, config.lowercase), config.seed, config.avoid_shared_targets)
    rows, corpus = _corpus_rows(builder, corpus_config, state, show_progress=state.is_main_process and reports_progress(config))
    del builder  # frees the TF-IDF index before training
    summary = train_stage1(data_args, model_args, config, rows=rows)
    summary["pretrain_corpus"] = corpus
    if state.is_main_process:
        write_json(Path(config.output_dir) / "pretrain_corpus.json", corpus)
    return summary


def _corpus_rows(builder: PretrainCorpusBuilder, corpus_config: PretrainCorpusConfig, state: PartialState, show_progress: bool) -> tuple[Stage1Rows, dict]:
    """The corpus's positive rows and its summary, on disk when ``corpus_dir`` is set (its pairs
    saved in ``pairs_dir`` when set)."""
    if corpus_config.corpus_dir:
        # The main process writes the shards (with `num_proc` worker processes: the way to use more
        # cores here); the others wait, then find them finished.
        with state.main_process_first():
            corpus = builder.write(corpus_config.corpus_dir, show_progress=show_progress)
        rows = load_positive_rows(corpus_config.corpus_dir)
        if corpus_config.pairs_dir and state.is_main_process:
            atomic_save_dataset(load_pretrain_split(corpus_config.corpus_dir, "pairs"), corpus_config.pairs_dir)
        return rows, corpus
    # Every process builds its own copy here: workers only where one process would leave cores idle.
    built = builder.build(show_progress=show_progress, num_proc=corpus_config.num_proc if state.num_processes == 1 else 1)
    if corpus_config.pairs_dir and state.is_main_process:
        atomic_save_dataset(built.pairs, corpus_config.pairs_dir)
    return built.positives, built.summary
