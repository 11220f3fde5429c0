"""A recipe given a bad config or command line stops at once with one line naming the file, the line
and the field (angel_trl.recipe_args), and Ctrl-C ends it with one 'interrupted' line (status 130)."""

from __future__ import annotations

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



@pytest.fixture()
def data(tmp_path) -> dict[str, str]:
    return {
        "kb_path": str(write_jsonl(tmp_path / "kb.jsonl", TOY_KB)),
        "train_file": str(write_jsonl(tmp_path / "train.jsonl", toy_documents())),
    }


def write_config(tmp_path: Path, recipe: str, data: dict, **changes) -> Path:
    """A valid config of ``recipe`` (or, with ``changes``, one that differs so); None removes a key."""
    config = {**data, **REQUIRED.get(recipe, {}), "output_dir": str(tmp_path / "out"), **changes}
    path = tmp_path / f"{recipe}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}, sort_keys=False))
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


@pytest.mark.parametrize("config", sorted(c for c in RECIPE_OF if c.startswith("demo/")))
def test_the_demo_configs_parse_as_trl_parses_them(config):
    """Valid input is parsed as before (the demo configs' files are in the repository)."""
    arguments, argv = recipe_arguments(RECIPE_OF[config]), ["--config", str(CONFIGS / f"{config}.yaml")]
    cwd = os.getcwd()
    os.chdir(ROOT)  # the configs' paths are relative to the repo root
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
}


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_config_is_one_line_naming_its_line_and_field(recipe, case, tmp_path, data):
    change, key, fragment = BAD_CONFIGS[case]
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    subst = {"MISSING": str(tmp_path / "missing"), "A_FILE": str(a_file)}
    for old, new in subst.items():
        change = {k: v.replace(old, new) for k, v in change.items()}
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
