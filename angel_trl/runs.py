"""The end of every training run: score dev/test with the trained linker and save what later stages load."""

from __future__ import annotations

from pathlib import Path

from accelerate.utils import is_peft_model

from .corpus import Corpus
from .evaluation import link_and_score
from .io_utils import write_json, write_jsonl
from .kb import KnowledgeBase
from .linking import EntityLinker
from .peft_utils import save_adapter_and_merge


def score_and_save(trainer, linker: EntityLinker, kb: KnowledgeBase, corpora: dict[str, Corpus | None], seen: set[str] | None, summary: dict, results_file: str) -> dict:
    """Add dev/test scores to ``summary``; on the main process write predictions, model, tokenizer,
    linking artefacts, ``training_args.json`` and ``results_file`` into ``trainer.args.output_dir``.

    A PEFT model is saved merged (and its adapter in ``adapter/``); it is merged in place, so the
    trainer and linker hold the merged model afterwards."""
    linker.model = trainer.model
    output_dir = Path(trainer.args.output_dir)
    for name, corpus in corpora.items():
        if corpus is None:
            continue
        summary[name], predictions = link_and_score(linker, corpus, kb, seen, show_progress=trainer.is_world_process_zero())
        if trainer.is_world_process_zero():
            write_jsonl(output_dir / f"predictions_{name}.jsonl", predictions)
    if trainer.is_world_process_zero():
        if is_peft_model(trainer.model):
            # The linker directory must load as a plain seq2seq model: the adapter goes to its own folder.
            trainer.model = linker.model = save_adapter_and_merge(trainer.model, linker.tokenizer, output_dir)
        trainer.save_model(str(output_dir))
        # Trainer pickles its arguments into training_args.bin; we keep them as JSON instead.
        (output_dir / "training_args.bin").unlink(missing_ok=True)
        (output_dir / "training_args.json").write_text(trainer.args.to_json_string())
        linker.save_artifacts(output_dir)
        write_json(output_dir / results_file, summary)
    return summary
