"""The end of every training run: score dev/test with the trained linker and save what later stages load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import is_peft_model
from transformers.trainer_utils import get_last_checkpoint

from angel_trl.data.corpus import Corpus
from angel_trl.evaluation import TrainingSeen, count_truncated_sources, evaluate_linking
from angel_trl.data.files import atomic_write_text, exclusive_output_dir, write_json, write_jsonl
from angel_trl.data.kb import KnowledgeBase
from angel_trl.errors import FieldError
from angel_trl.linking.linker import EntityLinker
from angel_trl.machine import describe_machine
from angel_trl.progress import reports_progress
from angel_trl.training.lora import save_adapter_and_merge
from angel_trl.trainers.linking_eval import link_across_processes


def score_and_save(trainer, linker: EntityLinker, kb: KnowledgeBase, corpora: dict[str, Corpus | None], seen: TrainingSeen | None, summary: dict, results_file: str) -> dict:
    """Save the model, tokenizer, linking artefacts and ``training_args.json`` into
    ``trainer.args.output_dir``, then link and score each corpus given (``None`` ones, and splits
    not in ``trainer.args.final_eval_splits``, skipped),
    writing ``predictions_<split>.jsonl`` and, last, ``results_file`` with ``summary``, the scores and
    the machine (:func:`~angel_trl.machine.describe_machine`).
    Saving comes first because linking a large test set can take an hour on a CPU: a run killed
    then still leaves a loadable linker (score it with ``recipes/evaluate.py``).
    Call it on every process: saving gathers sharded (FSDP) weights and each process links its
    share of the mentions, both collectives.

    A PEFT model is saved merged (and its adapter in ``adapter/``); it is merged in place, so the
    trainer and linker hold the merged model afterwards."""
    output_dir = Path(trainer.args.output_dir)
    if is_peft_model(trainer.model):
        # The linker directory must load as a plain seq2seq model: the main process saves the adapter
        # to its own folder; every process links with the same merged weights.
        trainer.model = save_adapter_and_merge(trainer.model, linker.tokenizer, output_dir) if trainer.is_world_process_zero() else trainer.model.merge_and_unload()
    # On every process: under FSDP the full state dict is gathered collectively; only the main process writes.
    trainer.save_model(str(output_dir))
    linker.model = trainer.model
    if trainer.is_world_process_zero():
        # Trainer pickles its arguments into training_args.bin; we keep them as JSON instead.
        (output_dir / "training_args.bin").unlink(missing_ok=True)
        atomic_write_text(output_dir / "training_args.json", trainer.args.to_json_string())
        linker.save_artifacts(output_dir)
    for name, corpus in corpora.items():
        if corpus is None or name not in trainer.args.final_eval_splits:
            continue
        inputs = linker.inputs_for(corpus.mentions, corpus.texts())
        results = link_across_processes(linker, inputs, show_progress=trainer.is_world_process_zero() and reports_progress(trainer.args))
        summary[name], predictions = evaluate_linking(corpus.mentions, results, kb, seen, sources=[it.source for it in inputs])
        summary[name]["truncated_sources"] = count_truncated_sources(linker, inputs, name)
        if trainer.is_world_process_zero():
            write_jsonl(output_dir / f"predictions_{name}.jsonl", predictions)
    if trainer.is_world_process_zero():
        summary["machine"] = describe_machine(str(trainer.args.device), trainer.args.world_size)
        write_json(output_dir / results_file, summary)
    return summary


@contextmanager
def locked_output_dir(args) -> Iterator[None]:
    """Hold the run's ``args.output_dir`` (TrainingArguments) on the main process, which writes it.

    A second run into the same directory then fails at once (:class:`~angel_trl.errors.OutputDirBusyError`)
    instead of both writing checkpoints and results over each other. Only rank 0 locks: under
    ``accelerate launch`` the other processes of the run share its directory (and, on several
    nodes, its file system). A ``resume_from_checkpoint`` with nothing to resume from fails here,
    before the data is built, not when training starts."""
    check_resumable(args)
    with exclusive_output_dir(args.output_dir) if args.process_index == 0 else nullcontext():
        yield


def resume_arg(value: str | bool | None) -> str | bool | None:
    """``resume_from_checkpoint`` for ``Trainer.train``: ``true`` or ``last`` (a string when given on
    the command line) mean the newest checkpoint in ``output_dir``; any other string is a path."""
    if isinstance(value, str) and value.lower() in ("true", "last"):
        return True
    return value


def check_resumable(args) -> None:
    """Raise :class:`FieldError` when ``args.resume_from_checkpoint`` asks to resume and there is no
    checkpoint to resume from (``true`` with no ``checkpoint-*`` in ``output_dir``, or a path that
    is not a directory)."""
    resume = resume_arg(args.resume_from_checkpoint)
    if resume is True and resumed_checkpoint(resume, args.output_dir) is None:
        raise FieldError("resume_from_checkpoint", f"true, but {args.output_dir} holds no checkpoint-* to resume from (leave it unset to start afresh)")
    if isinstance(resume, str) and resume and not Path(resume).is_dir():
        raise FieldError("resume_from_checkpoint", f"{resume}: no such checkpoint directory")


def resumed_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint directory a run with this ``resume_from_checkpoint`` resumes from, or ``None``."""
    resume = resume_arg(resume_from_checkpoint)
    if resume is True:
        return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
    return resume or None


def end_processes() -> None:
    """Wait for every process, then tear the process group down: the last call of a recipe.

    Why: a process that reaches the end first and leaves the interpreter with the gloo group still
    up (while the main process writes cards or results) can die in the group's teardown with
    "terminate called without an active exception" (SIGABRT), which fails the whole launch although
    every result was written. Does nothing in a single process."""
    state = PartialState()
    state.wait_for_everyone()
    state.destroy_process_group()
