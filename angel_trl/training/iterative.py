"""Iterative stage 2 (the "iterative mode" of the official ANGEL code): after a DPO round, mine fresh
pairs on the training corpus with the model just trained and run DPO again from it, with it as the
reference (iterative DPO). Its own mistakes, not the stage-1 model's, become the next negatives."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from accelerate import PartialState
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from angel_trl.data.corpus import Corpus
from angel_trl.data.arguments import DataArguments
from angel_trl.data.files import atomic_save_dataset, write_json
from angel_trl.evaluation import comparison_table, scores_table
from angel_trl.linking.linker import EntityLinker
from angel_trl.defaults import MINING_SUMMARY
from angel_trl.mining import MiningConfig, mine_pairs, training_corpus_to_mine
from angel_trl.progress import reports_progress
from angel_trl.training.finish import resume_arg
from angel_trl.training.stage2 import STAGE2_RESULTS, Stage2Arguments, train_stage2
from angel_trl.trainers import Seq2SeqDPOConfig

logger = logging.getLogger(__name__)

ROUNDS_SUMMARY = "rounds_summary.json"


@dataclass
class Stage2Run:
    """What a stage-2 run (plain or iterative) leaves behind: its summary, the linker to keep with the
    reference and train pairs it was trained from, and the table of scores to print."""

    summary: dict
    linker_dir: str
    reference: str
    train_pairs: str
    table: str


def train_stage2_rounds(
    data_args: DataArguments, stage2_args: Stage2Arguments, config: Seq2SeqDPOConfig, mining: MiningConfig, rounds: int,
    callbacks: list[TrainerCallback] | None = None,
) -> Stage2Run:
    """Stage 2 as ``recipes/stage2_dpo.py`` runs it: with ``rounds=1`` plain
    :func:`~angel_trl.training.stage2.train_stage2` in ``config.output_dir`` (its summary, a scores
    table); otherwise :func:`train_stage2_iterative` (the rounds summary, the best round's linker
    and a table comparing the rounds). Call it on every process."""
    if rounds == 1:
        return _plain_run(data_args, stage2_args, config, callbacks)
    return _iterative_run(train_stage2_iterative(data_args, stage2_args, config, mining, rounds, callbacks), config.output_dir)


def _plain_run(
    data_args: DataArguments, stage2_args: Stage2Arguments, config: Seq2SeqDPOConfig, callbacks: list[TrainerCallback] | None,
) -> Stage2Run:
    """One round of stage 2, trained in ``config.output_dir`` from ``stage2_args.stage1_model``."""
    summary = train_stage2(data_args, stage2_args, config, callbacks)
    table = scores_table({k: summary[k] for k in ("dev", "test") if k in summary}, f"Stage 2 ({config.output_dir})")
    return Stage2Run(summary, config.output_dir, stage2_args.stage1_model, stage2_args.train_pairs, table)


def _iterative_run(summary: dict, output_dir: str) -> Stage2Run:
    """The best round of an iterative run (``summary`` from :func:`train_stage2_iterative`)."""
    best = summary["rounds"][summary["best_round"] - 1]
    runs = {f"round {rec['round']}": rec for rec in summary["rounds"]}
    table = f"Stage 2, {len(runs)} rounds ({output_dir}); best by dev acc@1: round {best['round']} ({best['output_dir']})\n\n" + comparison_table(runs)
    return Stage2Run(summary, best["output_dir"], best["reference"], best["train_pairs"], table)


def train_stage2_iterative(
    data_args: DataArguments, stage2_args: Stage2Arguments, config: Seq2SeqDPOConfig, mining: MiningConfig, rounds: int,
    callbacks: list[TrainerCallback] | None = None,
) -> dict:
    """``rounds`` rounds of stage 2; return a summary of each round and the best one by dev acc@1.

    Round 1 is :func:`~angel_trl.training.stage2.train_stage2` from ``stage2_args.stage1_model`` on
    ``stage2_args.train_pairs``. Round r > 1 mines the train split with round r-1's linker (``mining``)
    into ``<output_dir>/round-<r>/pairs`` (summary in ``round-<r>/mining_summary.json``), then trains
    from round r-1's linker, also the reference, into ``<output_dir>/round-<r>``. Dev pairs (eval loss
    only) stay ``stage2_args.dev_pairs``. ``<output_dir>/rounds_summary.json``, rewritten after each
    round, names the best round (``best_output_dir`` is the linker to use). With ``rounds=1`` this is
    plain stage 2 in ``output_dir``: no round folders and no summary file.

    Resuming (``resume_from_checkpoint`` true): finished rounds are read back, not retrained, the
    first unfinished one reuses its mined pairs and resumes from its newest checkpoint, if any.
    A round that mines no pair ends the iteration early (with a warning). ``callbacks`` go to every
    round's Trainer. Call it on every process, as ``train_stage2``: mining splits the mentions
    across processes and only the main process writes.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if rounds == 1:
        summary = train_stage2(data_args, stage2_args, config, callbacks)
        record = _round_record(1, config.output_dir, stage2_args.stage1_model, stage2_args.train_pairs, summary, None)
        return {"rounds": [record], "best_round": 1, "best_output_dir": config.output_dir}
    train, resume = _iteration_inputs(data_args, config, mining)
    # The device through the training arguments first: they set up the process group (gloo with
    # use_cpu) that PartialState() then returns instead of creating a different one.
    device = str(config.device)
    state = PartialState()
    reference, train_pairs = stage2_args.stage1_model, stage2_args.train_pairs
    summary: dict = {"rounds": []}
    for r in range(1, rounds + 1):
        out = Path(config.output_dir) / f"round-{r}"
        finished = bool(resume) and (out / STAGE2_RESULTS).exists()
        mined = None
        if r > 1:
            train_pairs = str(out / "pairs")
            mined = _round_pairs(reference, train, data_args, config, mining, out, resume, device, state)
            if mined["pairs"] == 0:
                # Nothing left to contrast (every beam all right or all wrong); the same on every process.
                logger.warning("stage-2 round %d: no pairs mined with %s, stopping after %d rounds: %s", r, reference, r - 1, mined)
                break
        if finished:
            result = json.loads((out / STAGE2_RESULTS).read_text())
        else:
            result = _train_round(data_args, replace(stage2_args, stage1_model=reference, train_pairs=train_pairs), config, out, resume, callbacks, state)
        summary["rounds"].append(_round_record(r, str(out), reference, train_pairs, result, mined))
        best = _keep_best(summary, config.output_dir, state)
        logger.info("stage-2 round %d/%d: %d pairs, dev %s; best so far: round %d", r, rounds, result["pairs"], summary["rounds"][-1].get("dev"), best["round"])
        reference = str(out)
    return summary


def _iteration_inputs(data_args: DataArguments, config: Seq2SeqDPOConfig, mining: MiningConfig) -> tuple[Corpus, str | bool | None]:
    """The train split to mine and the ``resume_from_checkpoint`` value; raise for what cannot iterate."""
    if mining.rule == "tfidf":
        raise ValueError("mining rule 'tfidf' does not depend on the model: every round would mine the same pairs")
    train = data_args.load_split("train")
    if train is None:
        raise ValueError("iterative stage 2 mines the train split: set train_file")
    resume = resume_arg(config.resume_from_checkpoint)
    if isinstance(resume, str):
        raise ValueError("with rounds > 1, resume_from_checkpoint takes true or last: each round resumes from its own newest checkpoint")
    return train, resume


def _round_pairs(
    reference: str, train: Corpus, data_args: DataArguments, config: Seq2SeqDPOConfig, mining: MiningConfig, out: Path,
    resume: str | bool | None, device: str, state: PartialState,
) -> dict:
    """The mining summary of the round in ``out``: its pairs mined with ``reference`` into
    ``out/pairs``, or, on resume, those already there read back."""
    if resume and (out / "pairs").exists():
        return json.loads((out / MINING_SUMMARY).read_text())
    return _mine_round(reference, train, data_args, config, mining, out / "pairs", device, state)


def _train_round(
    data_args: DataArguments, round_args: Stage2Arguments, config: Seq2SeqDPOConfig, out: Path, resume: str | bool | None,
    callbacks: list[TrainerCallback] | None, state: PartialState,
) -> dict:
    """Stage 2 of one round into ``out``, resumed from its newest checkpoint when resuming."""
    # Shallow: the copy shares the process state the arguments set up (a deep copy would duplicate it).
    round_config = copy.copy(config)
    round_config.output_dir = str(out)
    round_config.resume_from_checkpoint = True if resume and out.is_dir() and get_last_checkpoint(str(out)) else None
    result = train_stage2(data_args, round_args, round_config, callbacks)
    # Round r+1 loads this round's linker, written by the main process only.
    state.wait_for_everyone()
    return result


def _keep_best(summary: dict, output_dir: str, state: PartialState) -> dict:
    """Name the best round so far in ``summary`` and write it (main process); return that round."""
    # Ties go to the earlier round (fewer steps from stage 1 for the same dev score); without a
    # dev split, the last round.
    best = max(summary["rounds"], key=lambda rec: rec["dev"]["acc@1"] if "dev" in rec else rec["round"])
    summary["best_round"], summary["best_output_dir"] = best["round"], best["output_dir"]
    if state.is_main_process:
        write_json(Path(output_dir) / ROUNDS_SUMMARY, summary)
    return best


def _mine_round(model_dir: str, train: Corpus, data_args: DataArguments, config: Seq2SeqDPOConfig, mining: MiningConfig, pairs_dir: Path, device: str, state: PartialState) -> dict:
    """Mine ``train`` with the linker in ``model_dir`` and save the pairs, if any (main process); every
    process returns the mining summary."""
    linker = EntityLinker.from_pretrained(model_dir, device=device, batch_size=config.link_batch_size)
    kb = linker.kb or data_args.load_kb()
    pairs, mined = mine_pairs(linker, training_corpus_to_mine(train, kb, mining), kb, mining, show_progress=state.is_main_process and reports_progress(config))
    if state.is_main_process and len(pairs):
        # The summary first: reused pairs (on resume) then always have theirs.
        write_json(pairs_dir.parent / MINING_SUMMARY, mined)
        atomic_save_dataset(pairs, pairs_dir)
    state.wait_for_everyone()
    return mined


def _round_record(round_: int, output_dir: str, reference: str, train_pairs: str, result: dict, mined: dict | None) -> dict:
    record = {"round": round_, "output_dir": output_dir, "reference": reference, "train_pairs": train_pairs, "pairs": result["pairs"], "mining": mined}
    record["kept_start_model"] = result.get("kept_start_model", False)
    for split in ("dev", "test"):
        if split in result:
            record[split] = {k: result[split][k] for k in ("acc@1", "acc@5")}
    return record
