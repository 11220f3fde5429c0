"""The end of every training run: score dev/test with the trained linker and save what later stages load."""

from __future__ import annotations

from pathlib import Path

from .corpus import Corpus
from .evaluation import link_and_score
from .io_utils import write_json, write_jsonl
from .kb import KnowledgeBase
from .linking import EntityLinker


def score_and_save(trainer, linker: EntityLinker, kb: KnowledgeBase, corpora: dict[str, Corpus | None], seen: set[str] | None, summary: dict, results_file: str) -> dict:
    """Add dev/test scores to ``summary``; on the main process write predictions, model, tokenizer,
    linking artefacts, ``training_args.json`` and ``results_file`` into ``trainer.args.output_dir``."""
    linker.model = trainer.model
    output_dir = Path(trainer.args.output_dir)
    for name, corpus in corpora.items():
        if corpus is None:
            continue
        summary[name], predictions = link_and_score(linker, corpus, kb, seen, show_progress=trainer.is_world_process_zero())
        if trainer.is_world_process_zero():
            write_jsonl(output_dir / f"predictions_{name}.jsonl", predictions)
    if trainer.is_world_process_zero():
        trainer.save_model(str(output_dir))
        # Trainer pickles its arguments into training_args.bin; we keep them as JSON instead.
        (output_dir / "training_args.bin").unlink(missing_ok=True)
        (output_dir / "training_args.json").write_text(trainer.args.to_json_string())
        linker.save_artifacts(output_dir)
        write_json(output_dir / results_file, summary)
    return summary
