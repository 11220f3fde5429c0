"""Scale-out and resume: the accelerate configs, 2 processes vs 1, and interrupted runs resumed.

Two-process runs use ``accelerate launch --multi_gpu --num_processes 2`` with ``--use_cpu true``: the
Trainer then sets up DDP over gloo on the CPU. (``accelerate launch --num_processes 2 --cpu`` starts a
single process unless MPI is configured.)
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from angel_trl.data.arguments import DataArguments
from angel_trl.training.finish import resume_arg

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "accelerate"
LAUNCH_2 = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]

# Short runs on the toy data (tests/conftest.py); the global batch is the same under 1 and 2 processes
# (per-device batch halved) and divides the row count: at an epoch's short last batch, 2 processes
# would pad by repeating rows from the start (accelerate's even_batches) and train on other rows.
STAGE1 = dict(
    model_size="tiny", max_steps=24, per_device_train_batch_size=4, learning_rate=3e-3, warmup_steps=4, eval_strategy="steps", eval_steps=12,
    save_strategy="steps", save_steps=12, max_eval_mentions=7, link_num_beams=4, link_top_k=4, logging_steps=4, seed=0, use_cpu=True, disable_tqdm=True, report_to="none",
)
STAGE2 = dict(
    max_steps=4, per_device_train_batch_size=4, learning_rate=1e-4, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], precompute_ref_log_probs=True,
    eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, link_num_beams=6, logging_steps=1, seed=0, use_cpu=True, disable_tqdm=True,
    report_to="none",
)


def cli(args: dict) -> list[str]:
    """``--key value`` arguments for a recipe (lists as several values, booleans as true/false)."""
    out = []
    for key, value in args.items():
        values = value if isinstance(value, list) else [value]
        out += [f"--{key}", *(str(v).lower() if isinstance(v, bool) else str(v) for v in values)]
    return out


def toy_data(toy_dir: Path) -> DataArguments:
    split = str(toy_dir / "train.jsonl")  # dev and test are the training mentions: enough to compare runs
    return DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=split, dev_file=split, test_file=split)


def data_cli(data: DataArguments) -> list[str]:
    return cli({"kb_path": data.kb_path, "train_file": data.train_file, "dev_file": data.dev_file, "test_file": data.test_file})


def weights(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def max_weight_difference(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)


def eval_history(checkpoint: Path) -> list[dict]:
    """The evaluation entries the Trainer logged up to ``checkpoint``."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [{k: v for k, v in e.items() if k.startswith("eval_") and "runtime" not in k and "per_second" not in k} | {"step": e["step"]} for e in state["log_history"] if "eval_loss" in e]


def failure_report(done: subprocess.CompletedProcess) -> str:
    """Both ends of a failed launch's stderr: where a rank died can be far above the launcher's summary."""
    err = done.stderr
    return err if len(err) <= 6000 else f"{err[:2000]}\n[... {len(err) - 6000} characters ...]\n{err[-4000:]}"


def launch_two(recipe: str, args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([*LAUNCH_2, recipe, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, failure_report(done)
    return done


class SimulatedKill(RuntimeError):
    pass


class KillAfterCheckpoint(TrainerCallback):
    """Stops training right after the checkpoint of ``step`` is written, as a killed job would."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise SimulatedKill(f"killed after checkpoint-{self.step}")


# ---------------------------------------------------------------------------- configs and arguments


EXPECTED_TYPES = {"cpu": "NO", "single_gpu": "NO", "multi_gpu": "MULTI_GPU", "multi_node": "MULTI_GPU", "deepspeed_zero2": "DEEPSPEED", "fsdp": "FSDP"}


def launch_args(name: str, *extra: str):
    """What ``accelerate launch --config_file <name>.yaml`` makes of the file (no process started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / f"{name}.yaml"), *extra, "recipes/stage1.py"])
    return _validate_launch_command(args)


def test_every_accelerate_config_loads_and_says_how_to_launch_it():
    from accelerate.commands.config.config_args import load_config_from_file

    assert {p.stem for p in CONFIGS.glob("*.yaml")} == set(EXPECTED_TYPES)
    for name, distributed_type in EXPECTED_TYPES.items():
        path = CONFIGS / f"{name}.yaml"
        config = load_config_from_file(str(path))
        assert str(config.distributed_type).endswith(distributed_type), name
        text = path.read_text()
        assert text.startswith("# ") and f"accelerate launch --config_file recipes/accelerate/{name}.yaml recipes/" in text, name


def test_fsdp_config_wraps_bart_layers_and_saves_full_weights(monkeypatch):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed.fsdp import StateDictType
    from transformers.models.bart import modeling_bart

    args, _, _ = launch_args("fsdp")
    for key, value in prepare_multi_gpu_env(args).items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert all(hasattr(modeling_bart, cls) for cls in plugin.transformer_cls_names_to_wrap)
    assert set(plugin.transformer_cls_names_to_wrap) == {"BartEncoderLayer", "BartDecoderLayer"}
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT
    assert not plugin.cpu_ram_efficient_loading  # models built from scratch exist on every process


def test_deepspeed_config_is_zero2_and_follows_the_training_arguments(monkeypatch):
    """Built as the launcher and accelerate build it; DeepSpeed itself is not installed here."""
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args, defaults, _ = launch_args("deepspeed_zero2")
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    _, env = prepare_deepspeed_cmd_env(args)
    for key, value in env.items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    ds = DeepSpeedPlugin().deepspeed_config
    assert ds["zero_optimization"]["stage"] == 2
    # "auto": filled from --gradient_accumulation_steps / --max_grad_norm / batch size by the Trainer
    assert ds["gradient_accumulation_steps"] == ds["gradient_clipping"] == ds["train_micro_batch_size_per_gpu"] == "auto"


def test_multi_node_config_names_the_main_machine():
    args, _, _ = launch_args("multi_node", "--machine_rank", "1")
    assert (args.num_machines, args.num_processes, args.machine_rank) == (2, 16, 1)
    assert args.main_process_ip and args.main_process_port


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_recipes_accept_resume_from_checkpoint(stage, tmp_path):
    from trl import TrlParser

    if stage == "stage1":
        from angel_trl.training.stage1 import ModelArguments
        from angel_trl.trainers import Stage1Config

        parser = TrlParser((DataArguments, ModelArguments, Stage1Config))
        extra = []
    else:
        from angel_trl.training.stage2 import Stage2Arguments
        from angel_trl.trainers import Seq2SeqDPOConfig

        parser = TrlParser((Stage2Arguments, DataArguments, Seq2SeqDPOConfig))
        extra = ["--stage1_model", "m", "--train_pairs", "p"]
    for value, expected in (("true", True), ("last", True), (str(tmp_path / "checkpoint-4"), str(tmp_path / "checkpoint-4"))):
        *_, config = parser.parse_args_and_config(["--kb_path", "kb.jsonl", "--output_dir", str(tmp_path), "--use_cpu", "true", "--resume_from_checkpoint", value, *extra])
        assert resume_arg(config.resume_from_checkpoint) == expected
    assert resume_arg(None) is None


# ---------------------------------------------------------------------------- stage 1


@pytest.fixture(scope="module")
def stage1_reference(toy_dir, tmp_path_factory):
    """The uninterrupted 1-process stage-1 run every other stage-1 run is compared with."""
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    out = tmp_path_factory.mktemp("stage1_reference")
    return out, train_stage1(toy_data(toy_dir), ModelArguments(), Stage1Config(output_dir=str(out), **STAGE1))


def test_stage1_killed_while_linking_the_test_set_leaves_its_final_linker(stage1_reference, toy_dir, tmp_path, monkeypatch):
    """The model and linking artefacts are saved before the (on a CPU, hour-long) final linking."""
    import angel_trl.training.finish
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    def killed(*args, **kwargs):
        raise SimulatedKill("killed while linking the dev / test mentions")

    monkeypatch.setattr(angel_trl.training.finish, "link_across_processes", killed)
    with pytest.raises(SimulatedKill):
        train_stage1(toy_data(toy_dir), ModelArguments(), Stage1Config(output_dir=str(tmp_path), **STAGE1))
    ref_dir, _ = stage1_reference
    assert not (tmp_path / "stage1_results.json").exists()
    assert max_weight_difference(ref_dir, tmp_path) <= 1e-6  # the trained (best) weights, not a checkpoint's
    linker = EntityLinker.from_pretrained(str(tmp_path))
    assert (tmp_path / "linker_config.json").read_text() == (ref_dir / "linker_config.json").read_text()
    reference = EntityLinker.from_pretrained(str(ref_dir))
    assert [r.top_ids for r in linker.link(["[ST] lung cancer [ET]"])] == [r.top_ids for r in reference.link(["[ST] lung cancer [ET]"])]


def test_final_eval_splits_choose_what_is_linked_once_training_ends(stage1_reference, toy_dir, tmp_path):
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Seq2SeqDPOConfig, Stage1Config

    _, ref = stage1_reference
    summary = train_stage1(toy_data(toy_dir), ModelArguments(), Stage1Config(output_dir=str(tmp_path), final_eval_splits=["test"], **STAGE1))
    assert "dev" not in summary and summary["test"] == ref["test"]
    assert (tmp_path / "predictions_test.jsonl").exists() and not (tmp_path / "predictions_dev.jsonl").exists()
    for config in (Stage1Config, Seq2SeqDPOConfig):
        with pytest.raises(ValueError, match="final_eval_splits: takes dev and/or test"):
            config(output_dir=str(tmp_path), final_eval_splits=["validation"], use_cpu=True)


def test_a_resumed_model_from_scratch_takes_the_checkpoints_tokenizer(tmp_path):
    from angel_trl.modeling import train_tokenizer
    from angel_trl.training.finish import resumed_checkpoint
    from angel_trl.training.stage1 import ModelArguments, make_model
    from angel_trl.trainers import Stage1Config

    saved = train_tokenizer(["cardiac arrest", "heart failure", "renal failure"], 300)
    saved.save_pretrained(tmp_path / "checkpoint-12")
    config = Stage1Config(output_dir=str(tmp_path), model_size="tiny", use_cpu=True, resume_from_checkpoint="last")
    assert resumed_checkpoint(config.resume_from_checkpoint, config.output_dir) == str(tmp_path / "checkpoint-12")
    other_texts = ["hyponatremia", "anemia", "migraine with aura"]
    _, tokenizer = make_model(ModelArguments(), config, other_texts)
    assert tokenizer.get_vocab() == saved.get_vocab() != train_tokenizer(other_texts, 300).get_vocab()
    assert resumed_checkpoint(None, str(tmp_path)) is None and resumed_checkpoint("true", str(tmp_path / "absent")) is None


def test_a_resumed_run_reports_the_train_loss_of_the_whole_run(toy_dir, tmp_path):
    """Checkpoints between logging steps (save 3, log 2): the unlogged steps still count."""
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"))
    run = {**STAGE1, "max_steps": 6, "save_steps": 3, "logging_steps": 2, "eval_strategy": "no"}
    whole = train_stage1(data, ModelArguments(), Stage1Config(output_dir=str(tmp_path / "whole"), **run))
    with pytest.raises(SimulatedKill):
        train_stage1(data, ModelArguments(), Stage1Config(output_dir=str(tmp_path / "resumed"), **run), callbacks=[KillAfterCheckpoint(3)])
    resumed = train_stage1(data, ModelArguments(), Stage1Config(output_dir=str(tmp_path / "resumed"), resume_from_checkpoint="true", **run))
    assert resumed["train"]["train_loss"] == pytest.approx(whole["train"]["train_loss"], rel=1e-6)
    saved = json.loads((tmp_path / "resumed" / "stage1_results.json").read_text())
    assert saved["train"]["train_loss"] == resumed["train"]["train_loss"]


def test_a_training_run_into_a_directory_another_run_holds_fails_at_once(toy_dir, tmp_path):
    from angel_trl.errors import OutputDirBusyError
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config
    from tests.data.test_files import hold_lock

    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(OutputDirBusyError, match="another run is writing"):
            train_stage1(toy_data(toy_dir), ModelArguments(), Stage1Config(output_dir=str(tmp_path), **STAGE1))
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".angel-trl.lock"]  # nothing trained, nothing written


@pytest.mark.slow
def test_stage1_resumed_after_a_kill_gives_the_uninterrupted_result(stage1_reference, toy_dir, tmp_path):
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    ref_dir, ref = stage1_reference
    data = toy_data(toy_dir)
    with pytest.raises(SimulatedKill):
        train_stage1(data, ModelArguments(), Stage1Config(output_dir=str(tmp_path), **STAGE1), callbacks=[KillAfterCheckpoint(12)])
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-12"]
    resumed = train_stage1(data, ModelArguments(), Stage1Config(output_dir=str(tmp_path), resume_from_checkpoint="true", **STAGE1))
    # Data order, dropout RNG, optimizer and scheduler come back from the checkpoint: same weights.
    assert max_weight_difference(ref_dir, tmp_path) <= 1e-6
    assert resumed["dev"] == ref["dev"] and resumed["test"] == ref["test"]
    assert eval_history(tmp_path / "checkpoint-24") == eval_history(ref_dir / "checkpoint-24")
    assert resumed["train"]["train_loss"] == pytest.approx(ref["train"]["train_loss"], rel=1e-6)  # the whole run's, not steps 13-24's


@pytest.mark.slow
def test_stage1_on_two_processes_matches_one(stage1_reference, toy_dir, tmp_path):
    """Same global batch (4 = 2 x 2) and seed, so the same rows in every step; each process decodes
    half of the dev mentions.

    Tolerance: weights within 0.15 (max abs) after 24 steps at lr 3e-3, eval loss within 5%, dev/test
    acc@k within one mention. The tiny preset trains with dropout 0.1 and the masks differ (each
    process draws them for its half-batch), so the weights drift apart: 0.05 measured, against
    2e-5 with dropout off. Measured: identical final dev/test scores, one of the 7 dev mentions
    flipped at the step-12 evaluation.
    """
    ref_dir, ref = stage1_reference
    assert sum(v for k, v in ref["rows"].items() if k.startswith("rows_")) % STAGE1["per_device_train_batch_size"] == 0
    args = {**STAGE1, "per_device_train_batch_size": STAGE1["per_device_train_batch_size"] // 2}
    done = launch_two("recipes/stage1.py", [*data_cli(toy_data(toy_dir)), *cli(args), "--output_dir", str(tmp_path)])
    # 7 dev mentions during training: 4 + 3 per process; all 8 at the end: 4 + 4
    for share in ("4 of 7 inputs on process 0/2", "3 of 7 inputs on process 1/2", "4 of 8 inputs on process 1/2"):
        assert f"linking {share}" in done.stderr
    two = json.loads((tmp_path / "stage1_results.json").read_text())
    assert max_weight_difference(ref_dir, tmp_path) < 0.15
    one_mention = 100.0 / ref["dev"]["evaluated"]
    for split in ("dev", "test"):
        assert two[split]["evaluated"] == ref[split]["evaluated"]
        for k in ("acc@1", "acc@5"):
            assert abs(two[split][k] - ref[split][k]) <= one_mention + 1e-9, (split, k, two[split][k], ref[split][k])
    # The loss is the same token mean on 1 and 2 processes (BART's own loss would be doubled).
    ref_eval, two_eval = eval_history(ref_dir / "checkpoint-24"), eval_history(tmp_path / "checkpoint-24")
    assert [e["step"] for e in ref_eval] == [e["step"] for e in two_eval]
    for a, b in zip(ref_eval, two_eval):
        assert abs(a["eval_loss"] - b["eval_loss"]) < 0.05 * a["eval_loss"], (a, b)
        assert abs(a["eval_acc@1"] - b["eval_acc@1"]) <= 100.0 / a["eval_evaluated"] + 1e-9, (a, b)


# ---------------------------------------------------------------------------- stage 2


@pytest.fixture(scope="module")
def toy_pairs(trained_toy, toy_dir, toy_kb, tmp_path_factory) -> Path:
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs

    pairs, _ = mine_pairs(EntityLinker.from_pretrained(trained_toy[0]), read_corpus_jsonl(toy_dir / "train.jsonl"), toy_kb, MiningConfig(rule="all", num_beams=6), show_progress=False)
    # 4 steps of 4 pairs stay within the first epoch: 1 and 2 processes see exactly the same batches.
    assert len(pairs) >= STAGE2["max_steps"] * STAGE2["per_device_train_batch_size"]
    out = tmp_path_factory.mktemp("toy_pairs") / "pairs"
    pairs.save_to_disk(str(out))
    return out


def stage2_args(trained_toy, toy_pairs):
    from angel_trl.training.stage2 import Stage2Arguments

    return Stage2Arguments(stage1_model=str(trained_toy[0]), train_pairs=str(toy_pairs), dev_pairs=str(toy_pairs))


@pytest.fixture(scope="module")
def stage2_reference(trained_toy, toy_pairs, toy_dir, tmp_path_factory):
    from angel_trl.training.stage2 import train_stage2
    from angel_trl.trainers import Seq2SeqDPOConfig

    out = tmp_path_factory.mktemp("stage2_reference")
    return out, train_stage2(toy_data(toy_dir), stage2_args(trained_toy, toy_pairs), Seq2SeqDPOConfig(output_dir=str(out), **STAGE2))


@pytest.mark.slow
def test_stage2_resumed_after_a_kill_gives_the_uninterrupted_result(stage2_reference, trained_toy, toy_pairs, toy_dir, tmp_path):
    from angel_trl.training.stage2 import train_stage2
    from angel_trl.trainers import Seq2SeqDPOConfig

    ref_dir, ref = stage2_reference
    data, args = toy_data(toy_dir), stage2_args(trained_toy, toy_pairs)
    with pytest.raises(SimulatedKill):
        train_stage2(data, args, Seq2SeqDPOConfig(output_dir=str(tmp_path), **STAGE2), callbacks=[KillAfterCheckpoint(2)])
    checkpoint = tmp_path / "checkpoint-2"
    resumed = train_stage2(data, args, Seq2SeqDPOConfig(output_dir=str(tmp_path), resume_from_checkpoint=str(checkpoint), **STAGE2))
    # The reference log-probs are recomputed from the stage-1 model, so they equal the first run's.
    assert max_weight_difference(ref_dir, tmp_path) <= 1e-6
    assert resumed["dev"] == ref["dev"] and resumed["test"] == ref["test"]
    assert eval_history(tmp_path / "checkpoint-4") == eval_history(ref_dir / "checkpoint-4")
    assert resumed["train"]["train_loss"] == pytest.approx(ref["train"]["train_loss"], rel=1e-6)


@pytest.mark.slow
def test_stage2_on_two_processes_matches_one(stage2_reference, trained_toy, toy_pairs, toy_dir, tmp_path):
    """Same global batch (4 = 2 x 2), same pairs in the same order, dropout off (DPO's default). The
    two-process run uses the reference *model* (DDP, ``prepare_model`` of the reference) where the
    one-process run used precomputed reference log-probs: the same objective.

    Tolerance: weights within 1e-3 (10 x the learning rate), eval loss within 1e-2, reward metrics
    within 1e-3, dev/test acc@k exactly equal. The DPO terms match to float noise (with loss_type sigmoid
    alone the weights differ by 9e-6), but the sft term is a token mean over each process's batch
    (as in TRL), so two half-batches weight the chosen-name tokens differently than one batch.
    """
    ref_dir, ref = stage2_reference
    args = {**STAGE2, "per_device_train_batch_size": STAGE2["per_device_train_batch_size"] // 2, "precompute_ref_log_probs": False}
    stage2 = stage2_args(trained_toy, toy_pairs)
    paths = cli({"stage1_model": stage2.stage1_model, "train_pairs": stage2.train_pairs, "dev_pairs": stage2.dev_pairs})
    done = launch_two("recipes/stage2_dpo.py", [*paths, *data_cli(toy_data(toy_dir)), *cli(args), "--output_dir", str(tmp_path)])
    assert "linking 4 of 8 inputs on process 1/2" in done.stderr
    two = json.loads((tmp_path / "stage2_results.json").read_text())
    assert max_weight_difference(ref_dir, tmp_path) < 1e-3
    for split in ("dev", "test"):
        assert {k: two[split][k] for k in ("evaluated", "acc@1", "acc@5")} == {k: ref[split][k] for k in ("evaluated", "acc@1", "acc@5")}
    ref_eval, two_eval = eval_history(ref_dir / "checkpoint-4"), eval_history(tmp_path / "checkpoint-4")
    assert [e["step"] for e in ref_eval] == [e["step"] for e in two_eval]
    for a, b in zip(ref_eval, two_eval):
        assert abs(a["eval_loss"] - b["eval_loss"]) < 1e-2, (a, b)  # the sft term: see above
        for key in ("eval_rewards/margins", "eval_logps/chosen", "eval_rewards/accuracies"):
            assert abs(a[key] - b[key]) < 1e-3, (key, a[key], b[key])
        assert a["eval_acc@1"] == b["eval_acc@1"]


# ---------------------------------------------------------------------------- sharded weights


@pytest.mark.slow
def test_linking_split_across_processes_with_sharded_weights(trained_toy, tmp_path):
    """FSDP runs a collective in every layer's forward: the split gives every process the same
    number of generate calls (7 inputs one at a time: 4 + 4, one padded), or decoding fails.
    Results equal one process's (batch size 1 on both sides: no padding differences)."""
    from dataclasses import asdict, replace

    from angel_trl.linking.linker import EntityLinker
    from tests.sharded_linking_worker import INPUTS

    out = tmp_path / "results.json"
    modes = ["fsdp1", "fsdp2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "tests/sharded_linking_worker.py", str(trained_toy[0]), str(out), *modes]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, failure_report(done)
    two = json.loads(out.read_text())
    assert two["num_processes"] == 2
    linker = EntityLinker.from_pretrained(trained_toy[0])
    linker.config = replace(linker.config, batch_size=1)
    one = [asdict(r) for r in linker.link(INPUTS)]
    for mode in modes:
        assert len(two[mode]) == len(one), mode
        for a, b in zip(one, two[mode]):
            assert [(c["concept_id"], c["name"]) for c in a["candidates"]] == [(c["concept_id"], c["name"]) for c in b["candidates"]], mode
            assert all(abs(x["score"] - y["score"]) < 1e-5 for x, y in zip(a["candidates"], b["candidates"])), mode


@pytest.mark.slow
def test_stage2_keeps_the_starting_model_when_no_checkpoint_beats_it(trained_toy, toy_pairs, toy_dir, tmp_path, caplog):
    """A destructive DPO run (plain sigmoid, huge lr) loses dev accuracy: the stage-1 model is kept.
    A max_source_length other than the stage-1 linker's is replaced by it, and the log says so."""
    from angel_trl.training.stage2 import train_stage2
    from angel_trl.trainers import Seq2SeqDPOConfig

    wreck = {**STAGE2, "loss_type": ["sigmoid"], "loss_weights": [1.0], "learning_rate": 0.05, "max_steps": 6, "load_best_model_at_end": True, "max_source_length": 77}
    with caplog.at_level(logging.WARNING, logger="angel_trl.training.stage2"):
        summary = train_stage2(toy_data(toy_dir), stage2_args(trained_toy, toy_pairs), Seq2SeqDPOConfig(output_dir=str(tmp_path), keep_start_if_best=True, **wreck))
    assert "max_source_length 77 is replaced by the stage-1 linker's" in caplog.text
    last = max(tmp_path.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = [h["eval_acc@1"] for h in json.loads((last / "trainer_state.json").read_text())["log_history"] if "eval_acc@1" in h]
    assert len(history) == 3 and summary["start_dev_metric"] > max(history)  # every checkpoint lost dev accuracy
    assert summary["kept_start_model"] and max_weight_difference(trained_toy[0], tmp_path) == 0.0
    assert summary["dev"]["acc@1"] == pytest.approx(summary["start_dev_metric"])


def test_stage1_on_a_corpus_of_another_kb_says_it_learns_kb_names_only(toy_dir, tmp_path, caplog):
    """Every gold id outside the KB: no mention row is left, and the log says so and why."""
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    other = tmp_path / "other.jsonl"
    other.write_text((toy_dir / "train.jsonl").read_text().replace('["C', '["NOPE'))  # the ids only
    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(other))
    config = Stage1Config(output_dir=str(tmp_path / "out"), **{**STAGE1, "max_steps": 1, "eval_strategy": "no", "save_strategy": "no"}, final_eval_splits=[])
    with caplog.at_level(logging.WARNING, logger="angel_trl.training.stage1"):
        summary = train_stage1(data, ModelArguments(), config)
    assert "rows_mention" not in summary["rows"] and summary["rows"]["skipped_gold_not_in_kb"] == 8
    assert f"stage 1 trains on no mention of {other}: of its 8 mentions, 8 gold not in kb" in caplog.text


def test_stage2_refuses_pairs_mined_with_another_model_or_kb(trained_toy, toy_pairs, toy_kb):
    from datasets import load_from_disk

    from angel_trl.errors import FieldError
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.training.stage2 import check_pairs_match_linker

    linker = EntityLinker.from_pretrained(trained_toy[0])
    pairs = load_from_disk(str(toy_pairs))
    check_pairs_match_linker(pairs, linker, toy_kb, "train_pairs")  # mined with it: nothing to say
    renamed = pairs.map(lambda row, i: {"chosen": "a name of another kb" if i == 2 else row["chosen"]}, with_indices=True)
    with pytest.raises(FieldError, match="train_pairs.*pair 2 names a chosen name 'a name of another kb' that the stage-1 model's KB does not have"):
        check_pairs_match_linker(renamed, linker, toy_kb, "train_pairs")
    other_ids = pairs.map(lambda row: {"rejected_id": "OTHER:1"})
    with pytest.raises(FieldError, match="pair 0 names a concept 'OTHER:1'"):
        check_pairs_match_linker(other_ids, linker, toy_kb, "dev_pairs")
    check_pairs_match_linker(pairs.select_columns(["prompt", "chosen", "rejected"]), linker, toy_kb, "train_pairs")  # pairs without ids: names only
