"""A recipe given a bad config or command line stops at once with one line naming the file, the line
and the field (angel_trl.recipe_args), and Ctrl-C ends it with one 'interrupted' line (status 130)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from trl import TrlParser

from angel_trl.recipe_args import parse_recipe_args, run_recipe
from tests.conftest import TOY_KB, interrupt_when_ready, toy_documents, write_jsonl
from tests.recipes.test_recipe_configs import CONFIGS, RECIPE_OF, recipe_arguments

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("stage1", "mine", "stage2_dpo", "pretrain", "evaluate", "fit_hybrid", "mine_crossfit")
# The recipes whose arguments hold Stage1Config (and so model_size).
BUILD_FROM_SCRATCH = ("stage1", "pretrain", "mine_crossfit")
# What each recipe needs besides the data arguments (paths that are only read once the work starts).
REQUIRED = {
    "mine": {"model_dir": "some/linker"},
    "stage2_dpo": {"stage1_model": "some/linker", "train_pairs": "some/pairs"},
    "evaluate": {"model_dir": "some/linker"},
    "fit_hybrid": {"model_dir": "some/linker"},
}
# A YAML null in a config change (None removes the key).
NULL = object()


@pytest.fixture()
def data(tmp_path) -> dict[str, str]:
    return {
        "kb_path": str(write_jsonl(tmp_path / "kb.jsonl", TOY_KB)),
        "train_file": str(write_jsonl(tmp_path / "train.jsonl", toy_documents())),
    }


def write_config(tmp_path: Path, recipe: str, data: dict, **changes) -> Path:
    """A valid config of ``recipe`` (or, with ``changes``, one that differs so); None removes a key,
    :data:`NULL` writes it as null."""
    config = {**data, **REQUIRED.get(recipe, {}), "output_dir": str(tmp_path / "out"), **changes}
    path = tmp_path / f"{recipe}.yaml"
    config = {k: None if v is NULL else v for k, v in config.items() if v is not None}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if line.startswith(f"{key}:"))


def parse_error(recipe: str, argv: list[str]) -> str:
    """The one line ``parse_recipe_args`` ends with on ``argv``."""
    with pytest.raises(SystemExit) as e:
        parse_recipe_args(recipe_arguments(recipe), argv, prog=f"{recipe}.py")
    message = e.value.code
    assert isinstance(message, str) and "\n" not in message and "Traceback" not in message, message
    assert message.startswith(f"{recipe}.py: error: "), message
    return message


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_valid_config_parses(recipe, tmp_path, data):
    config = write_config(tmp_path, recipe, data)
    parsed = parse_recipe_args(recipe_arguments(recipe), ["--config", str(config)])
    assert any(getattr(args, "kb_path", None) == data["kb_path"] for args in parsed)


def save_pairs(path: Path, splits: tuple[str, ...] | None = None) -> Path:
    """Three toy preference pairs saved at ``path`` (``save_to_disk``): a Dataset, or a DatasetDict of ``splits``."""
    from datasets import Dataset, DatasetDict

    pairs = Dataset.from_dict({"prompt": ["a", "b", "c"], "chosen": ["x", "y", "z"], "rejected": ["y", "z", "x"]})
    (DatasetDict({s: pairs for s in splits}) if splits else pairs).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("config", sorted(c for c in RECIPE_OF if c.startswith("demo/")))
def test_the_demo_configs_parse_as_trl_parses_them(config, tmp_path):
    """Valid input is parsed as before: the demo configs, run where the demo pipeline's earlier steps
    have written their outputs (the pairs that stage 2 reads) beside the repository's data."""
    arguments, argv = recipe_arguments(RECIPE_OF[config]), ["--config", str(CONFIGS / f"{config}.yaml")]
    (tmp_path / "data").symlink_to(ROOT / "data")  # the configs' paths are relative to the repo root
    for split in ("train", "dev"):
        save_pairs(tmp_path / "outputs" / "demo-pairs" / split)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert parse_recipe_args(arguments, argv) == TrlParser(arguments).parse_args_and_config(argv)
    finally:
        os.chdir(cwd)


# (change to the valid config, fragment of the error after "<config>:<line>: ") for every recipe
BAD_CONFIGS = {
    "unknown field": ({"kb_pth": "x"}, "kb_pth", "unknown field 'kb_pth' (did you mean 'kb_path'?)"),
    "missing kb file": ({"kb_path": "MISSING/kb.jsonl"}, "kb_path", "kb_path: MISSING/kb.jsonl: no such file"),
    "missing corpus file": ({"dev_file": "MISSING/dev.jsonl"}, "dev_file", "dev_file: MISSING/dev.jsonl: no such file"),
    "kb_format: csv": ({"kb_format": "csv"}, "kb_format", "kb_format: 'csv' is not one of jsonl, medic, mesh"),
    "corpus_format": ({"corpus_format": "bioc"}, "corpus_format", "corpus_format: 'bioc' is not one of jsonl, pubtator"),
    "output dir under a file": ({"output_dir": "A_FILE/out"}, "output_dir", "output_dir: A_FILE/out: cannot write here: A_FILE is a file, not a directory"),
    "kb_path a folder": ({"kb_path": "A_DIR"}, "kb_path", "kb_path: A_DIR: a folder, not a file (kb_format jsonl reads one file)"),
    "corpus file a folder": ({"dev_file": "A_DIR"}, "dev_file", "dev_file: A_DIR: a folder, not a file (corpus_format jsonl reads one file)"),
    "kb_path null": ({"kb_path": NULL}, "kb_path", "kb_path: expects a string, not null"),
    "a scalar for a list": ({"entity_types": "Disease"}, "entity_types", "entity_types: expects a list of strings or null, not 'Disease'; write even one item as a list: [Disease]"),
    "a list of the wrong items": ({"entity_types": ["Disease", 3]}, "entity_types", "entity_types: expects a list of strings or null, not ['Disease', 3] (a list)"),
    "an empty list": ({"entity_types": []}, "entity_types", "entity_types: an empty list keeps everything, as unset does"),
    "a number for a bool": ({"zero_shot": 1}, "zero_shot", "zero_shot: expects true or false, not 1"),
    "a number for a string": ({"corpus_format": 3}, "corpus_format", "corpus_format: expects a string, not 3"),
    "a mapping for a string": ({"train_file": {"path": "x"}}, "train_file", "train_file: expects a string or null, not {'path': 'x'} (a mapping)"),
    "mesh field without mesh": ({"mesh_tree_prefixes": ["D"]}, "mesh_tree_prefixes", "mesh_tree_prefixes: is read only with kb_format mesh, not jsonl"),
}


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_config_is_one_line_naming_its_line_and_field(recipe, case, tmp_path, data):
    change, key, fragment = BAD_CONFIGS[case]
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    (tmp_path / "a_dir").mkdir()
    subst = {"MISSING": str(tmp_path / "missing"), "A_FILE": str(a_file), "A_DIR": str(tmp_path / "a_dir")}
    for old, new in subst.items():
        change = {k: v.replace(old, new) if isinstance(v, str) else v for k, v in change.items()}
        fragment = fragment.replace(old, new)
    config = write_config(tmp_path, recipe, data, **change)
    message = parse_error(recipe, ["--config", str(config)])
    assert f"{config}:{line_of(config, key)}: {fragment}" in message


@pytest.mark.parametrize("recipe", BUILD_FROM_SCRATCH)
def test_an_unknown_model_size_fails_at_parse_time(recipe, tmp_path, data):
    config = write_config(tmp_path, recipe, data, model_size="huge")
    message = parse_error(recipe, ["--config", str(config)])
    assert f"{config}:{line_of(config, 'model_size')}: model_size: 'huge' is not one of tiny, small, base" in message
    # Given on the command line, the option is named instead.
    message = parse_error(recipe, ["--config", str(write_config(tmp_path, recipe, data)), "--model_size", "huge"])
    assert message.endswith("error: --model_size: 'huge' is not one of tiny, small, base")


@pytest.mark.parametrize("change, problem", [
    ({"kb_names_per_concept": 1, "max_kb_names": 100}, "sample KB names either by max_kb_names or by kb_names_per_concept, not both"),
    ({"kb_names_per_concept": 0}, "must be at least 1, not 0"),
])
def test_kb_name_sampling_is_checked_at_parse_time(change, problem, tmp_path, data):
    config = write_config(tmp_path, "stage1", data, **change)
    assert f"{config}:{line_of(config, 'kb_names_per_concept')}: kb_names_per_concept: {problem}" in parse_error("stage1", ["--config", str(config)])


def test_the_hybrids_fit_set_is_checked_at_parse_time(tmp_path, data):
    config = write_config(tmp_path, "fit_hybrid", data, fit_on="unseen")
    assert f"{config}:{line_of(config, 'fit_on')}: fit_on: 'unseen' is not one of all, unseen-text, unseen-concept" in parse_error("fit_hybrid", ["--config", str(config)])


def test_yaml_and_command_line_errors(tmp_path, data):
    config = write_config(tmp_path, "stage1", data)
    broken = tmp_path / "broken.yaml"
    broken.write_text(config.read_text() + "splits: [train, dev\n")
    assert f"{broken}:" in parse_error("stage1", ["--config", str(broken)]) and "not valid YAML" in parse_error("stage1", ["--config", str(broken)])
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- kb_path\n")
    assert f"{not_a_mapping}: not a YAML mapping" in parse_error("stage1", ["--config", str(not_a_mapping)])
    assert f"{tmp_path / 'nope.yaml'}: cannot read the config file" in parse_error("stage1", ["--config", str(tmp_path / "nope.yaml")])
    assert "unrecognized arguments: --bogus 1" in parse_error("stage1", ["--config", str(config), "--bogus", "1"])
    assert "required: --kb_path" in parse_error("stage1", [])
    bad_value = write_config(tmp_path, "stage1", data, num_train_epochs="many")
    assert f"{bad_value}:{line_of(bad_value, 'num_train_epochs')}: argument --num_train_epochs" in parse_error("stage1", ["--config", str(bad_value)])
    zero_shot = write_config(tmp_path, "stage1", data, zero_shot=True)
    assert f"{zero_shot}:{line_of(zero_shot, 'zero_shot')}: zero_shot: drops the test concepts" in parse_error("stage1", ["--config", str(zero_shot)])
    push = write_config(tmp_path, "mine", data, push_to_hub=True)
    assert "push_to_hub: needs hub_dataset_id" in parse_error("mine", ["--config", str(push)])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_output_dir_under_a_read_only_directory(tmp_path, data):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        config = write_config(tmp_path, "stage1", data, output_dir=str(read_only / "out"))
        assert f"output_dir: {read_only / 'out'}: cannot write here: cannot create it: {read_only} is not writable" in parse_error("stage1", ["--config", str(config)])
    finally:
        read_only.chmod(0o700)


# ---------------------------------------------------------------------------------------- Ctrl-C
def test_every_recipe_parses_and_runs_through_the_helpers():
    for recipe in RECIPES:
        source = (ROOT / "recipes" / f"{recipe}.py").read_text()
        assert "parse_recipe_args(ARGUMENTS, sys.argv[1:])" in source and "TrlParser" not in source, recipe
        assert source.rstrip().endswith('if __name__ == "__main__":\n    run_recipe(main)'), recipe


def test_run_recipe_turns_ctrl_c_and_damaged_input_into_one_line(capsys):
    from angel_trl.errors import InputFormatError

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        run_recipe(interrupted, prog="stage1.py")
    assert e.value.code == 130 and capsys.readouterr().err == "stage1.py: interrupted\n"

    def damaged():
        raise InputFormatError("model/linker_config.json", None, "unknown field(s) 'x'")

    with pytest.raises(SystemExit) as e:
        run_recipe(damaged, prog="mine.py")
    assert e.value.code == "mine.py: error: model/linker_config.json: unknown field(s) 'x'"


def test_run_recipe_says_a_setting_or_file_it_cannot_use_in_one_line(capsys, monkeypatch):
    def no_dev():
        raise ValueError("eval_strategy is set but there is no dev_file")

    def no_model():
        raise FileNotFoundError(2, "No such file or directory", "/x/nomodel/linker_config.json")

    with pytest.raises(SystemExit) as e:
        run_recipe(no_dev, prog="stage1.py")
    assert e.value.code == "stage1.py: error: eval_strategy is set but there is no dev_file (ANGEL_TRL_TRACEBACK=1 shows where)"
    with pytest.raises(SystemExit) as e:
        run_recipe(no_model, prog="mine.py")
    assert e.value.code == "mine.py: error: /x/nomodel/linker_config.json: No such file or directory"
    monkeypatch.setenv("ANGEL_TRL_TRACEBACK", "1")
    with pytest.raises(ValueError, match="no dev_file"):
        run_recipe(no_dev, prog="stage1.py")


def test_compare_reads_results_files_only_and_names_each_row_once(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_recipe", Path(__file__).resolve().parents[1] / "recipes" / "compare.py")
    compare_recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_recipe)
    results = tmp_path / "stage1_results.json"
    results.write_text(json.dumps({"dev": {"acc@1": 80.0, "acc@5": 90.0}, "test": {"acc@1": 70.0, "acc@5": 85.0}}))
    summary = tmp_path / "mining_summary.json"
    summary.write_text(json.dumps({"train": {"pairs": 3}}))

    def compare(*args):
        monkeypatch.setattr(sys, "argv", ["compare.py", *args])
        try:
            run_recipe(compare_recipe.main, prog="compare.py")
        except SystemExit as e:  # argparse's exit status (2) or run_recipe's message (status 1)
            code = e.code if isinstance(e.code, int) else 1
            out, err = capsys.readouterr()
            return code, out, [*err.strip().splitlines(), *([e.code] if isinstance(e.code, str) else [])]
        out, err = capsys.readouterr()
        return 0, out, err.strip().splitlines()

    rc, out, _ = compare(f"stage 1={results}")
    assert rc == 0 and "| stage 1 | 80.0 | 90.0 | 70.0 | 85.0 |" in out
    for args, code, message in [
        ((f"a={summary}",), 1, f"compare.py: error: {summary}: not a stage results file"),
        ((f"a={tmp_path / 'missing.json'}",), 1, f"compare.py: error: {tmp_path / 'missing.json'}: No such file or directory"),
        ((f"a={results}", f"a={results}"), 2, "compare.py: error: the row name 'a' is given twice"),
        (("nothing",), 2, "compare.py: error: argument NAME=PATH: expected NAME=PATH"),
    ]:
        rc, _, err = compare(*args)
        assert rc == code and err[-1].startswith(message), (args, err)


def test_sigint_ends_a_recipe_with_one_line():
    child = (
        "import time\nfrom angel_trl.recipe_args import run_recipe\n"
        "def main():\n    print('ready', flush=True)\n    time.sleep(120)\n"
        "run_recipe(main, prog='stage1.py')\n"
    )
    returncode, err = interrupt_when_ready(child)
    assert returncode == 130 and err.strip().splitlines()[-1] == "stage1.py: interrupted" and "Traceback" not in err


def test_sigint_while_a_recipe_imports_ends_it_with_one_line():
    # What a recipe does before its heavy imports; the sleep stands for torch and TRL loading.
    child = (
        "from angel_trl.errors import exit_quietly_on_ctrl_c\nexit_quietly_on_ctrl_c('stage1.py')\n"
        "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"
    )
    returncode, err = interrupt_when_ready(child)
    assert returncode == 130 and err == "stage1.py: interrupted\n"


def test_every_recipe_quiets_ctrl_c_before_its_imports():
    import ast

    for recipe in sorted((ROOT / "recipes").glob("*.py")):
        body = [node for node in ast.parse(recipe.read_text()).body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        first, second = body[0], body[1]
        assert isinstance(first, ast.ImportFrom) and first.module == "angel_trl.errors" and [a.name for a in first.names] == ["exit_quietly_on_ctrl_c"], recipe.name
        assert isinstance(second, ast.If) and "exit_quietly_on_ctrl_c()" in ast.unparse(second), recipe.name


def test_a_key_set_twice_and_an_unknown_mining_rule_fail_at_parse_time(tmp_path, data):
    config = write_config(tmp_path, "mine", data)
    twice = tmp_path / "twice.yaml"
    twice.write_text(config.read_text() + "output_dir: elsewhere\n")
    assert f"{twice}:{len(twice.read_text().splitlines())}: 'output_dir' is set twice (also on line {line_of(config, 'output_dir')})" in parse_error("mine", ["--config", str(twice)])
    rule = write_config(tmp_path, "mine", data, rule="papr")
    assert f"{rule}:{line_of(rule, 'rule')}: rule: 'papr' is not one of paper, all, official, tfidf" in parse_error("mine", ["--config", str(rule)])


# ------------------------------------------------------------------ values checked against their fields
# The recipes whose arguments hold transformers' training arguments (Stage1Config or Seq2SeqDPOConfig).
TRAINING_RECIPES = ("stage1", "pretrain", "mine_crossfit", "stage2_dpo")
# (change, key, problem) for every training recipe: types that transformers would take unchecked, and bounds
BAD_TRAINING_VALUES = [
    ({"max_steps": 1.5}, "max_steps", "expects an integer, not 1.5"),
    ({"max_steps": True}, "max_steps", "expects an integer, not true"),
    ({"max_steps": 0}, "max_steps", "must be at least 1, or -1 to train num_train_epochs, not 0"),
    ({"max_steps": -5}, "max_steps", "must be at least 1, or -1 to train num_train_epochs, not -5"),
    ({"num_train_epochs": [1, 2]}, "num_train_epochs", "expects a number, not [1, 2] (a list)"),
    ({"num_train_epochs": 0}, "num_train_epochs", "must be more than 0, not 0"),
    ({"learning_rate": -1}, "learning_rate", "must be more than 0, not -1"),
    ({"learning_rate": float("nan")}, "learning_rate", "must be more than 0, not nan"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size", "must be at least 1, not 0"),
    ({"max_source_length": 0}, "max_source_length", "must be at least 1, not 0"),
    ({"link_num_beams": 0}, "link_num_beams", "must be at least 1, not 0"),
    ({"link_top_k": 11}, "link_top_k", "link_top_k (11) is more than link_num_beams (10)"),
    ({"link_batch_size": -1}, "link_batch_size", "must be at least 1, not -1"),
    ({"final_eval_splits": "dev"}, "final_eval_splits", "expects a list of strings, not 'dev'; write even one item as a list: [dev]"),
    ({"final_eval_splits": ["train"]}, "final_eval_splits", "takes dev and/or test, not ['train']"),
    ({"early_stopping_patience": 2, "eval_strategy": "no"}, "early_stopping_patience", "needs evaluations and the best checkpoint kept"),
    ({"lr_scheduler_kwargs": 3}, "lr_scheduler_kwargs", "expects a mapping or a string or null, not 3"),
]


@pytest.mark.parametrize("recipe", TRAINING_RECIPES)
@pytest.mark.parametrize("change, key, problem", BAD_TRAINING_VALUES, ids=[k for _, k, _ in BAD_TRAINING_VALUES])
def test_a_training_value_of_the_wrong_type_or_range_names_its_line(recipe, change, key, problem, tmp_path, data):
    config = write_config(tmp_path, recipe, data, **change)
    assert f"{config}:{line_of(config, key)}: {key}: {problem}" in parse_error(recipe, ["--config", str(config)])


# (recipe, change, key, problem): the ranges of our own fields
BAD_OWN_VALUES = [
    ("fit_hybrid", {"cv_folds": 1}, "cv_folds", "must be at least 2, not 1"),
    ("fit_hybrid", {"link_batch_size": 0}, "link_batch_size", "must be at least 1, not 0"),
    ("fit_hybrid", {"features": ["model", "nope"]}, "features", "ranker features: unknown ['nope']"),
    ("pretrain", {"negatives_per_name": -1}, "negatives_per_name", "must be at least 0, not -1"),
    ("pretrain", {"single_name_concepts": "drop"}, "single_name_concepts", "'drop' is not one of"),
    ("stage1", {"target_top_k": 0}, "target_top_k", "must be at least 1, not 0"),
    ("stage1", {"target_top_k": -1}, "target_top_k", "must be at least 1, not -1"),
    ("stage1", {"kb_target_top_k": 0}, "kb_target_top_k", "must be at least 1, not 0"),
    ("stage1", {"max_kb_names": 0}, "max_kb_names", "must be at least 1, not 0"),
    ("stage1", {"tokenizer_vocab_size": 0}, "tokenizer_vocab_size", "must be at least 1, not 0"),
    ("stage1", {"max_context_words": -1}, "max_context_words", "must be at least 0, not -1"),
    ("stage1", {"max_eval_mentions": 0}, "max_eval_mentions", "must be at least 1, not 0"),
    ("stage1", {"decoder_layers": 0}, "decoder_layers", "must be at least 1, not 0"),
    ("stage1", {"lora_r": 0}, "lora_r", "must be at least 1, not 0"),
    ("stage1", {"lora_dropout": 1}, "lora_dropout", "must be at least 0 and below 1, not 1"),
    ("stage1", {"mesh_tree_prefixes": []}, "mesh_tree_prefixes", "an empty list keeps everything"),
    ("mine", {"top_k": 0}, "top_k", "must be at least 1, not 0"),
    ("mine", {"num_beams": -3}, "num_beams", "must be at least 1, not -3"),
    ("mine", {"top_k": 20}, "top_k", "top_k (20) is more than num_beams (10)"),
    ("mine", {"tfidf_negatives": 0}, "tfidf_negatives", "must be at least 1, not 0"),
    ("mine", {"unseen_concept_names": -1}, "unseen_concept_names", "must be at least 0, not -1"),
    ("mine", {"negatives_from": "hybrid", "rule": "official"}, "negatives_from", "'hybrid' ranks concepts for the rules paper and all, not 'official'"),
    ("mine", {"splits": ["train", "validation"]}, "splits", "'validation' is not one of train, dev, test"),
    ("mine", {"splits": "train"}, "splits", "expects a list of strings, not 'train'"),
    ("mine", {"link_batch_size": 0}, "link_batch_size", "must be at least 1, not 0"),
    ("stage2_dpo", {"rounds": 0}, "rounds", "must be at least 1, not 0"),
    ("stage2_dpo", {"max_train_pairs": 0}, "max_train_pairs", "must be at least 1, not 0"),
    ("stage2_dpo", {"beta": 0}, "beta", "must be more than 0, not 0"),
    ("stage2_dpo", {"loss_weights": [1, "x"]}, "loss_weights", "expects a list of numbers or null, not [1, 'x'] (a list)"),
    ("evaluate", {"num_beams": 0}, "num_beams", "must be at least 1, not 0"),
    ("evaluate", {"top_k": 2.5}, "top_k", "expects an integer or null, not 2.5"),
    ("mine_crossfit", {"folds": 1}, "folds", "must be at least 2, not 1"),
    ("mine_crossfit", {"only_folds": [0, 5]}, "only_folds", "must name folds in 0..4, not [0, 5]"),
    ("mine_crossfit", {"only_folds": []}, "only_folds", "must name folds in 0..4, not []"),
]


@pytest.mark.parametrize("recipe, change, key, problem", BAD_OWN_VALUES, ids=[f"{r}-{k}-{list(c.values())[0]}" for r, c, k, _ in BAD_OWN_VALUES])
def test_a_value_out_of_its_fields_range_names_its_line(recipe, change, key, problem, tmp_path, data):
    config = write_config(tmp_path, recipe, data, **change)
    assert f"{config}:{line_of(config, key)}: {key}: {problem}" in parse_error(recipe, ["--config", str(config)])


def test_command_line_values_are_checked_too_and_name_the_option(tmp_path, data):
    config = write_config(tmp_path, "stage1", data)
    for option, problem in [("--learning_rate=-1", "learning_rate: must be more than 0, not -1.0"), ("--target_top_k=0", "target_top_k: must be at least 1, not 0")]:
        assert parse_error("stage1", ["--config", str(config), option]).endswith(f"error: --{problem}")
    # Any spelling argparse takes is a given value: the hyphenated alias too.
    assert parse_error("stage1", ["--config", str(config), "--learning-rate", "0"]).endswith("error: --learning_rate: must be more than 0, not 0.0")


def test_values_of_the_right_type_parse_as_before(tmp_path, data):
    """An int is a float value; YAML's 1e-4 (a string to YAML) is read as argparse reads it; a value not
    given is the default, whatever its annotation."""
    config = write_config(tmp_path, "stage1", data, num_train_epochs=2, learning_rate="1e-4", entity_types=["Disease"])
    data_args, _, stage1 = parse_recipe_args(recipe_arguments("stage1"), ["--config", str(config)])
    assert stage1.num_train_epochs == 2 and stage1.learning_rate == 1e-4 and data_args.entity_types == ["Disease"]
    assert stage1.debug == TrlParser(recipe_arguments("stage1")).parse_args_and_config(["--config", str(config)])[2].debug


def test_check_value_follows_the_annotation():
    from enum import Enum
    from typing import Literal

    from angel_trl.errors import FieldError
    from angel_trl.recipe_args import check_value

    class Color(str, Enum):
        RED = "red"

    fits = [(1, float), (1.5, float | None), (None, int | None), ("red", Color), (False, str | Literal[False]),
            ([1, 2], tuple[int, ...]), ([1, "a"], tuple[int, str]), ({"a": True}, dict[str, bool]), (["x"], list[str] | None)]
    for value, hint in fits:
        check_value("f", value, hint)
    misfits = [(True, int), (1.5, int), ("1", int), (0, bool), ("blue", Color), (0, Literal[False]), ([1], tuple[int, str]),
               ({"a": 1}, dict[str, bool]), ("x", list[str]), ((1,), list[int]), (None, str)]
    for value, hint in misfits:
        with pytest.raises(FieldError):
            check_value("f", value, hint)


# ------------------------------------------------------------------ stage 2's pairs, checked before any model loads
@pytest.mark.parametrize("field, split", [("train_pairs", "train"), ("dev_pairs", "dev")])
def test_a_pairs_path_that_is_not_a_saved_dataset_names_the_folder_to_give(field, split, tmp_path, data):
    mined = tmp_path / "pairs"  # what recipes/mine.py writes: <output_dir>/<split> and a summary beside them
    for s in ("train", "dev"):
        save_pairs(mined / s)
    (mined / "mining_summary.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    bad = {
        str(mined): f"{mined} is not a saved dataset (no state.json or dataset_dict.json); {mined} holds dev/ and train/: give {mined / split}",
        str(tmp_path / "empty"): f"{tmp_path / 'empty'} is not a saved dataset (no state.json or dataset_dict.json); give a folder that save_to_disk wrote",
        str(mined / "mining_summary.json"): f"{mined / 'mining_summary.json'}: a file, not the folder that save_to_disk writes",
        str(tmp_path / "nothing" / "train"): f"{tmp_path / 'nothing' / 'train'}: no such folder (nor a Hub dataset id)",
        str(save_pairs(tmp_path / "other_splits", ("test",))): f"{tmp_path / 'other_splits'}: a saved DatasetDict without a {split!r} split (it has test)",
    }
    for path, problem in bad.items():
        config = write_config(tmp_path, "stage2_dpo", data, **{field: path})
        assert f"{config}:{line_of(config, field)}: {field}: {problem}" in parse_error("stage2_dpo", ["--config", str(config)])
    # What load_pairs reads: a saved Dataset, a DatasetDict with the split, or (not on disk) a Hub id.
    for good in (mined / split, save_pairs(tmp_path / "both", ("train", "dev")), "someone/pairs"):
        parse_recipe_args(recipe_arguments("stage2_dpo"), ["--config", str(write_config(tmp_path, "stage2_dpo", data, **{field: str(good)}))])


# ------------------------------------------------------------------ what cannot be read as YAML text
def test_invalid_utf8_and_characters_yaml_refuses_name_their_line_and_column(tmp_path, data):
    config = write_config(tmp_path, "stage1", data)
    lines = config.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"".join(lines[:2]) + "seed: é4".encode() + b"\xff2\n" + b"".join(lines[2:]))  # column 9 in characters
    assert parse_error("stage1", ["--config", str(bad)]).endswith(f"error: {bad}:3: column 9: byte 0xff is not UTF-8 text; save the config as UTF-8")
    control = tmp_path / "control.yaml"
    control.write_text("".join(line.decode() for line in lines[:1]) + "seed: 4\x072\n")
    assert f"{control}:2: column 8: character U+0007 is not allowed in YAML" in parse_error("stage1", ["--config", str(control)])
    env = tmp_path / "env.yaml"
    env.write_text(config.read_text() + "env: PATH\n")
    assert f"{env}:{line_of(env, 'env')}: env: expects a mapping of environment variables" in parse_error("stage1", ["--config", str(env)])


def test_resume_from_checkpoint_with_nothing_to_resume_fails_before_any_work(tmp_path):
    from transformers import TrainingArguments

    from angel_trl.errors import FieldError
    from angel_trl.training.finish import check_resumable, locked_output_dir

    args = TrainingArguments(output_dir=str(tmp_path / "run"), resume_from_checkpoint="true", report_to=[])
    with pytest.raises(FieldError, match="resume_from_checkpoint: true, but .*run holds no checkpoint-\\* to resume from"):
        with locked_output_dir(args):
            pytest.fail("work started")
    args.resume_from_checkpoint = str(tmp_path / "gone")
    with pytest.raises(FieldError, match="gone: no such checkpoint directory"):
        check_resumable(args)
    (tmp_path / "run" / "checkpoint-4").mkdir(parents=True)
    args.resume_from_checkpoint = "true"
    check_resumable(args)  # something to resume from


def test_resume_from_checkpoint_true_in_yaml_reads_as_on_the_command_line(tmp_path):
    from angel_trl.trainers import Stage1Config

    config = tmp_path / "c.yaml"
    config.write_text("output_dir: out\nresume_from_checkpoint: true\n")
    (parsed,) = parse_recipe_args((Stage1Config,), ["--config", str(config)])
    assert parsed.resume_from_checkpoint == "true"


@pytest.mark.parametrize("recipe_args, fragment", [
    (("MineArguments", {"model_dir": "m", "output_dir": "o", "splits": []}), "splits: names no split to mine"),
    (("MineArguments", {"model_dir": "m", "output_dir": "o", "hub_dataset_id": "me/pairs"}), "hub_dataset_id: is set but push_to_hub is not"),
    (("HybridArguments", {"model_dir": "m", "cv_folds": 3}), "cv_folds: folds dev to choose the ranker: it applies only with choose_ranker: true"),
])
def test_a_setting_that_would_do_nothing_is_refused(recipe_args, fragment):
    import importlib.util

    from angel_trl.errors import FieldError
    from angel_trl.hybrid.fit import HybridArguments

    spec = importlib.util.spec_from_file_location("mine_recipe", Path(__file__).resolve().parents[1] / "recipes" / "mine.py")
    mine_recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mine_recipe)
    name, values = recipe_args
    cls = {"MineArguments": mine_recipe.MineArguments, "HybridArguments": HybridArguments}[name]
    with pytest.raises(FieldError, match=fragment):
        cls(**values)
