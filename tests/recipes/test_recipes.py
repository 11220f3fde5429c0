"""The recipes end to end on the demo data, with a tiny model and a few steps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def assert_a_readable_log(output: str) -> None:
    """Output redirected to a file: no progress bar redrawn in it, no warning repeated per dataloader."""
    assert "\r" not in output, [line[:80] for line in output.splitlines() if "\r" in line][:3]
    assert "pin_memory" not in output


@pytest.mark.slow
def test_stage1_then_evaluate_recipes(tmp_path):
    out = tmp_path / "stage1"
    cmd = [
        sys.executable, "recipes/stage1.py", "--config", "recipes/configs/demo/stage1.yaml",
        "--output_dir", str(out), "--model_size", "tiny", "--max_steps", "12", "--max_kb_names", "200",
        "--eval_strategy", "steps", "--eval_steps", "6", "--save_strategy", "steps", "--save_steps", "6",
        "--max_eval_mentions", "20", "--link_num_beams", "5", "--per_device_train_batch_size", "16",
    ]  # not use_cpu: that alone turns pinned memory off, and the default must not warn on a CPU machine either
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| test |" in done.stdout and "| dev |" in done.stdout
    assert_a_readable_log(done.stdout + done.stderr)
    summary = json.loads((out / "stage1_results.json").read_text())
    assert summary["rows"]["rows_kb"] == 200 and summary["rows"]["skipped_nil"] > 0
    assert summary["test"]["evaluated"] + summary["test"]["nil_excluded"] == sum(
        len(json.loads(line)["mentions"]) for line in (ROOT / "data/demo/test.jsonl").read_text().splitlines()
    )
    for f in ("trie.npz", "names.jsonl", "kb.jsonl", "linker_config.json", "model.safetensors", "tokenizer.json", "predictions_test.jsonl"):
        assert (out / f).exists(), f

    ev = tmp_path / "eval"
    cmd = [sys.executable, "recipes/evaluate.py", "--model_dir", str(out), "--output_dir", str(ev), "--kb_path", "data/demo/kb.jsonl",
           "--train_file", "data/demo/train.jsonl", "--test_file", "data/demo/test.jsonl", "--num_beams", "5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads((ev / "eval_results.json").read_text())
    assert scores["test"] == summary["test"]  # the saved linker reproduces the in-training scores

    # A shorter max_source_length than the saved one: every source is cut, counted, and the log says so.
    done = subprocess.run([*cmd, "--max_source_length", "6", "--output_dir", str(tmp_path / "short")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    cut = json.loads((tmp_path / "short" / "eval_results.json").read_text())["test"]["truncated_sources"]
    assert cut == summary["test"]["evaluated"] + summary["test"]["nil_excluded"] and summary["test"]["truncated_sources"] == 0
    assert f"test (data/demo/test.jsonl): {cut} of {cut} sources are longer than max_source_length=6" in done.stderr


@pytest.mark.slow
def test_mine_then_stage2_recipes(trained_toy, toy_dir, tmp_path):
    model_dir, _ = trained_toy
    data = ["--kb_path", str(toy_dir / "kb.jsonl"), "--train_file", str(toy_dir / "train.jsonl"), "--dev_file", str(toy_dir / "train.jsonl")]
    pairs = tmp_path / "pairs"
    cmd = [sys.executable, "recipes/mine.py", "--model_dir", str(model_dir), "--output_dir", str(pairs), "--num_beams", "6", "--also_rules", "official", "tfidf", *data]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((pairs / "mining_summary.json").read_text())
    assert summary["train"]["mentions"] == 8 and summary["train"]["pairs"] > 0 and summary["train"]["rule"] == "paper"
    for rule in ("official", "tfidf"):  # the further rules of the same decoding, each beside the run's own directory
        other = json.loads((tmp_path / f"pairs-{rule}" / "mining_summary.json").read_text())
        assert other["train"]["rule"] == other["dev"]["rule"] == rule and (tmp_path / f"pairs-{rule}" / "train").is_dir()
    again = subprocess.run([*cmd[:cmd.index("--also_rules")], "--also_rules", "paper", *data], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "also_rules: paper named twice" in again.stderr.strip().splitlines()[-1]

    out = tmp_path / "stage2"
    cmd = [
        sys.executable, "recipes/stage2_dpo.py", "--stage1_model", str(model_dir), "--train_pairs", str(pairs / "train"), "--dev_pairs", str(pairs / "dev"),
        *data, "--output_dir", str(out), "--max_steps", "4", "--per_device_train_batch_size", "4", "--loss_type", "sigmoid", "sft",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2", "--load_best_model_at_end", "true",
        "--link_num_beams", "6", "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--learning_rate", "1e-4",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "stage2_results.json").read_text())
    assert result["pairs"] == summary["train"]["pairs"] and "acc@1" in result["dev"]
    assert "| dev |" in done.stdout
    assert_a_readable_log(done.stdout + done.stderr)
    for f in ("trie.npz", "names.jsonl", "linker_config.json", "model.safetensors", "training_args.json"):
        assert (out / f).exists(), f


def test_mine_recipe_into_a_directory_another_run_holds_fails_at_once(trained_toy, toy_dir, tmp_path):
    from tests.data.test_files import hold_lock

    model_dir, _ = trained_toy
    pairs = tmp_path / "pairs"
    holder = hold_lock(pairs)
    try:
        cmd = [sys.executable, "recipes/mine.py", "--model_dir", str(model_dir), "--output_dir", str(pairs), "--kb_path", str(toy_dir / "kb.jsonl"), "--train_file", str(toy_dir / "train.jsonl"), "--splits", "train"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"recipes/mine.py: error: {pairs}: another run is writing" in done.stderr.strip().splitlines()[-1]
    assert not (pairs / "mining_summary.json").exists()


@pytest.mark.slow
def test_two_process_mining_gives_the_same_pairs(trained_toy, toy_dir, tmp_path):
    """Two CPU processes (DDP over gloo) split the mentions and gather them back in order.

    ``--multi_gpu --num_processes 2`` because ``--num_processes 2 --cpu`` starts a single process
    in accelerate 1.15 (without MPI); the recipe prints how many processes it mined on."""
    from datasets import load_from_disk

    model_dir, _ = trained_toy
    args = ["recipes/mine.py", "--model_dir", str(model_dir), "--num_beams", "6", "--splits", "train", "--kb_path", str(toy_dir / "kb.jsonl"), "--train_file", str(toy_dir / "train.jsonl")]
    outs = {}
    for n in (1, 2):
        outs[n] = tmp_path / f"pairs{n}"
        mode = ["--multi_gpu"] if n > 1 else ["--cpu"]
        launch = [sys.executable, "-m", "accelerate.commands.launch", *mode, "--num_processes", str(n), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        done = subprocess.run([*launch, *args, "--output_dir", str(outs[n])], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"mining on {n} process(es)" in done.stdout
    one, two = (load_from_disk(str(outs[n] / "train")).to_list() for n in (1, 2))
    assert len(one) == len(two) > 0
    for a, b in zip(one, two):
        # Identical pairs; scores only within float noise (batches are padded differently).
        scores = ("chosen_score", "rejected_score")
        assert {k: v for k, v in a.items() if k not in scores} == {k: v for k, v in b.items() if k not in scores}
        assert all(abs(a[k] - b[k]) < 1e-4 for k in scores)
    s1, s2 = (json.loads((outs[n] / "mining_summary.json").read_text()) for n in (1, 2))
    assert s1 == s2
