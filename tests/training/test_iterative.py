"""Early stopping (both stages) and iterative stage 2 (re-mining with each round's model), on the toy data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_from_disk
from transformers import TrainerCallback

import angel_trl.training.iterative as iterative
from angel_trl.data.arguments import DataArguments
from angel_trl.data.files import atomic_save_dataset
from angel_trl.training.iterative import train_stage2_iterative
from angel_trl.linking.linker import EntityLinker
from angel_trl.mining import MiningConfig, mine_pairs
from angel_trl.training.stage1 import ModelArguments, train_stage1
from angel_trl.training.stage2 import Stage2Arguments, train_stage2
from angel_trl.trainers import Seq2SeqDPOConfig, Stage1Config

MINING = MiningConfig(num_beams=6)


class StepRecorder(TrainerCallback):
    """The steps each training run ended at."""

    def __init__(self):
        self.ended_at: list[int] = []

    def on_train_end(self, args, state, control, **kwargs):
        self.ended_at.append(state.global_step)


@pytest.fixture(scope="module")
def toy_data(toy_dir) -> DataArguments:
    return DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"))


@pytest.fixture(scope="module")
def toy_pairs(trained_toy, toy_data, tmp_path_factory) -> Path:
    """Pairs mined with the stage-1 toy model (train and dev pairs alike)."""
    model_dir, _ = trained_toy
    linker = EntityLinker.from_pretrained(model_dir)
    pairs, summary = mine_pairs(linker, toy_data.load_split("train"), linker.kb, MINING, show_progress=False)
    assert summary["pairs"] > 0
    path = tmp_path_factory.mktemp("toy_pairs") / "train"
    atomic_save_dataset(pairs, path)
    return path


def dpo_config(output_dir, **overrides) -> Seq2SeqDPOConfig:
    args = dict(
        output_dir=str(output_dir), max_steps=4, per_device_train_batch_size=4, loss_type=["sigmoid", "sft"], learning_rate=1e-4,
        eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, load_best_model_at_end=True,
        link_num_beams=6, use_cpu=True, bf16=False, report_to="none", disable_tqdm=True, seed=0,
    )
    args.update(overrides)
    return Seq2SeqDPOConfig(**args)


def stage2_args(trained_toy, toy_pairs) -> Stage2Arguments:
    return Stage2Arguments(stage1_model=str(trained_toy[0]), train_pairs=str(toy_pairs), dev_pairs=str(toy_pairs))


# ------------------------------------------------------------------------------------- early stopping
def test_early_stopping_needs_evaluations_and_the_best_checkpoint(tmp_path):
    common = dict(output_dir=str(tmp_path), use_cpu=True, report_to="none", early_stopping_patience=1)
    with pytest.raises(ValueError, match="early_stopping_patience: needs"):
        Stage1Config(**common)  # eval_strategy "no"
    with pytest.raises(ValueError, match="early_stopping_patience: needs"):
        Seq2SeqDPOConfig(**common, eval_strategy="steps", load_best_model_at_end=False)
    with pytest.raises(ValueError, match="at least 1"):
        Seq2SeqDPOConfig(**{**common, "early_stopping_patience": 0}, eval_strategy="steps", load_best_model_at_end=True)
    ok = Seq2SeqDPOConfig(**common, eval_strategy="steps", save_strategy="steps", load_best_model_at_end=True)
    assert ok.early_stopping_patience == 1


def test_stage2_stops_when_dev_acc_stalls(trained_toy, toy_pairs, toy_data, tmp_path):
    """With a zero learning rate dev acc@1 cannot improve: patience 1 stops at the second evaluation."""
    steps = StepRecorder()
    config = dpo_config(tmp_path, max_steps=8, learning_rate=0.0, early_stopping_patience=1, keep_start_if_best=False)
    train_stage2(toy_data, stage2_args(trained_toy, toy_pairs), config, callbacks=[steps])
    assert steps.ended_at == [4]


def test_stage1_stops_when_dev_acc_stalls(toy_data, tmp_path):
    steps = StepRecorder()
    config = Stage1Config(
        output_dir=str(tmp_path), model_size="tiny", max_steps=8, learning_rate=0.0, per_device_train_batch_size=16,
        eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, load_best_model_at_end=True, early_stopping_patience=1,
        link_num_beams=2, link_top_k=2, use_cpu=True, report_to="none", disable_tqdm=True, seed=0,
    )
    train_stage1(toy_data, ModelArguments(), config, callbacks=[steps])
    assert steps.ended_at == [4]


# ------------------------------------------------------------------------------------------ iterative
def test_two_rounds_remine_with_the_previous_round(trained_toy, toy_pairs, toy_data, tmp_path, monkeypatch):
    calls = []

    def spy(data_args, args, config, callbacks=None):
        calls.append((args.stage1_model, args.train_pairs, config.output_dir))
        return train_stage2(data_args, args, config, callbacks)

    monkeypatch.setattr(iterative, "train_stage2", spy)
    out = tmp_path / "iter"
    summary = train_stage2_iterative(toy_data, stage2_args(trained_toy, toy_pairs), dpo_config(out), MINING, rounds=2)

    r1, r2 = out / "round-1", out / "round-2"
    # Round 1: stage 2 from the stage-1 model on the given pairs; round 2: from (and against) round 1, on its own pairs.
    assert calls == [(str(trained_toy[0]), str(toy_pairs), str(r1)), (str(r1), str(r2 / "pairs"), str(r2))]
    written = json.loads((out / "rounds_summary.json").read_text())
    assert written == summary
    first, second = summary["rounds"]
    assert first["mining"] is None and first["reference"] == str(trained_toy[0])
    assert second["reference"] == str(r1) and second["mining"]["mentions"] == 8
    assert second["mining"] == json.loads((r2 / "mining_summary.json").read_text())
    for rec in (first, second):
        assert set(rec["dev"]) == {"acc@1", "acc@5"}
        assert (Path(rec["output_dir"]) / "stage2_results.json").exists() and (Path(rec["output_dir"]) / "trie.npz").exists()
    best = max(summary["rounds"], key=lambda rec: rec["dev"]["acc@1"])  # first of the ties
    assert summary["best_round"] == best["round"] and summary["best_output_dir"] == best["output_dir"]

    # Round 2's pairs are exactly what round 1's linker mines.
    saved = load_from_disk(str(r2 / "pairs"))
    assert len(saved) == second["pairs"] == second["mining"]["pairs"]
    linker = EntityLinker.from_pretrained(r1)
    again, _ = mine_pairs(linker, toy_data.load_split("train"), linker.kb, MINING, show_progress=False)
    columns = ["mention_id", "chosen", "rejected", "case"]
    assert again.select_columns(columns).to_list() == saved.select_columns(columns).to_list()

    # Resuming a finished run reads the rounds back: nothing is mined or trained again.
    calls.clear()
    resumed = train_stage2_iterative(toy_data, stage2_args(trained_toy, toy_pairs), dpo_config(out, resume_from_checkpoint="true"), MINING, rounds=2)
    assert calls == [] and resumed == summary


def test_one_round_is_plain_stage2(trained_toy, toy_pairs, toy_data, tmp_path):
    fast = dict(max_steps=2, eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    plain = train_stage2(toy_data, stage2_args(trained_toy, toy_pairs), dpo_config(tmp_path / "plain", **fast))
    one = train_stage2_iterative(toy_data, stage2_args(trained_toy, toy_pairs), dpo_config(tmp_path / "one", **fast), MINING, rounds=1)

    def layout(d: Path) -> list[str]:
        return sorted(str(p.relative_to(d)) for p in d.rglob("*"))

    assert layout(tmp_path / "one") == layout(tmp_path / "plain")
    assert one["best_round"] == 1 and one["best_output_dir"] == str(tmp_path / "one")
    assert one["rounds"][0]["dev"] == {k: plain["dev"][k] for k in ("acc@1", "acc@5")}


def test_iterative_refuses_what_cannot_iterate(trained_toy, toy_pairs, toy_data, tmp_path):
    args = stage2_args(trained_toy, toy_pairs)
    with pytest.raises(ValueError, match="at least 1"):
        train_stage2_iterative(toy_data, args, dpo_config(tmp_path), MINING, rounds=0)
    with pytest.raises(ValueError, match="tfidf"):
        train_stage2_iterative(toy_data, args, dpo_config(tmp_path), MiningConfig(rule="tfidf"), rounds=2)
    no_train = DataArguments(kb_path=toy_data.kb_path, dev_file=toy_data.dev_file)
    with pytest.raises(ValueError, match="train_file"):
        train_stage2_iterative(no_train, args, dpo_config(tmp_path), MINING, rounds=2)


@pytest.mark.slow
def test_recipe_runs_rounds_from_the_command_line(trained_toy, toy_pairs, toy_dir, tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "stage2"
    cmd = [
        sys.executable, "recipes/stage2_dpo.py", "--stage1_model", str(trained_toy[0]), "--train_pairs", str(toy_pairs), "--dev_pairs", str(toy_pairs),
        "--kb_path", str(toy_dir / "kb.jsonl"), "--train_file", str(toy_dir / "train.jsonl"), "--dev_file", str(toy_dir / "train.jsonl"),
        "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--save_strategy", "no",
        "--link_num_beams", "6", "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
        "--rounds", "2", "--rule", "all", "--top_k", "3", "--num_beams", "6",
    ]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "rounds_summary.json").read_text())
    assert [rec["round"] for rec in summary["rounds"]] == [1, 2] and summary["rounds"][1]["mining"]["rule"] == "all"
    assert "| round 1 |" in done.stdout and "| round 2 |" in done.stdout
    # The model card goes to the best round only.
    assert [rec["output_dir"] for rec in summary["rounds"] if (Path(rec["output_dir"]) / "README.md").exists()] == [summary["best_output_dir"]]


def test_each_round_mines_the_unseen_concept_names_too(trained_toy, toy_data, tmp_path):
    """A later round mines its training corpus as recipes/mine.py does: with unseen_concept_names,
    the KB names of concepts no training mention carries join the training mentions."""
    from dataclasses import replace

    from accelerate import PartialState

    train = toy_data.load_split("train")
    half = replace(train, documents=train.documents[:4])  # C1-C4 trained: C5, C6 and C7 are not
    mining = MiningConfig(num_beams=6, unseen_concept_names=2, unseen_concept_seed=1)
    pairs_dir = tmp_path / "round-2" / "pairs"
    mined = iterative._mine_round(str(trained_toy[0]), half, toy_data, dpo_config(tmp_path), mining, pairs_dir, "cpu", PartialState(cpu=True))
    assert mined["unseen_concept_names"] == 2 and mined["mentions"] == 4 + 2
    saved = load_from_disk(str(pairs_dir))
    assert mined["pairs_from_unseen_concept_names"] == sum(m.startswith("unseen-concept-name-") for m in saved["mention_id"])
