"""Every YAML in recipes/configs parses into the argument dataclasses of the recipe it is written for.

A misspelled, renamed or removed field then fails here in a second, not when a user launches an
hour-long run (TrlParser refuses config keys no dataclass has).
"""

import importlib.util
from pathlib import Path

import pytest
import yaml
from trl import TrlParser

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "configs"

# config (recipes/configs/<dataset>/<stage>_<variant>.yaml) -> the recipe (recipes/<name>.py) it is launched with
RECIPE_OF = {
    "demo/stage1": "stage1",
    "demo/mine": "mine",
    "demo/stage2_dpo": "stage2_dpo",
    "demo/hybrid": "fit_hybrid",
    "ncbi/stage1_cpu_zeroshot": "stage1",
    "ncbi/stage1_cpu_zeroshot_concepts": "stage1",
    "bc5cdr-disease/stage1_cpu_zeroshot": "stage1",
    "ncbi/hybrid": "fit_hybrid",
    "bc5cdr-disease/hybrid": "fit_hybrid",
    "demo/pretrain": "pretrain",
    "demo/pretrain_dpo": "stage2_dpo",
    "ncbi/stage1_cpu": "stage1",
    "ncbi/stage1_gpu": "stage1",
    "ncbi/stage1_biobart_gpu": "stage1",
    "ncbi/stage1_t5_gpu": "stage1",
    "ncbi/stage1_sapbert_gpu": "stage1",
    "ncbi/mine": "mine",
    "ncbi/stage2_dpo": "stage2_dpo",
    "ncbi/stage2_dpo_lora": "stage2_dpo",
    "bc5cdr-disease/stage1_cpu": "stage1",
    "bc5cdr-disease/stage1_gpu": "stage1",
    "bc5cdr-disease/mine": "mine",
    "bc5cdr-disease/stage2_dpo": "stage2_dpo",
    "bc5cdr-chemical/stage1_cpu": "stage1",
    "bc5cdr-chemical/stage1_gpu": "stage1",
    "bc5cdr-chemical/mine": "mine",
    "bc5cdr-chemical/stage2_dpo": "stage2_dpo",
    "medic/pretrain": "pretrain",
    "medic/pretrain_dpo": "stage2_dpo",
    "mesh-chem/pretrain": "pretrain",
}


def recipe_arguments(recipe: str) -> tuple[type, ...]:
    """The recipe module's ARGUMENTS, loaded from its file (recipes/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{recipe}", ROOT / "recipes" / f"{recipe}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ARGUMENTS


def test_every_config_is_listed_with_its_recipe():
    assert {p.relative_to(CONFIGS).with_suffix("").as_posix() for p in CONFIGS.rglob("*.yaml")} == set(RECIPE_OF)


@pytest.mark.parametrize("config", sorted(RECIPE_OF))
def test_config_parses_into_its_recipe_arguments(config):
    path = CONFIGS / f"{config}.yaml"
    parsed = TrlParser(recipe_arguments(RECIPE_OF[config])).parse_args_and_config(["--config", str(path)])
    # Every key lands in some dataclass with the value written (no silent fall-back to a default).
    for key, value in yaml.safe_load(path.read_text()).items():
        holders = [args for args in parsed if hasattr(args, key)]
        assert holders, f"{path.name}: no argument takes {key!r}"
        assert any(getattr(args, key) == value or str(getattr(args, key)) == str(value) for args in holders), f"{path.name}: {key}"


@pytest.mark.parametrize("config", sorted(RECIPE_OF))
def test_config_values_fit_their_fields_and_parse_as_before(config):
    """The recipes' parser, which checks each value against its field's annotation and range, reads
    every config as TrlParser does (input files are not checked here: the data is not in the repo)."""
    from angel_trl.recipe_args import RecipeParser, read_config_keys

    path = CONFIGS / f"{config}.yaml"
    arguments, argv = recipe_arguments(RECIPE_OF[config]), ["--config", str(path)]
    parser = RecipeParser(arguments)
    parser.config_keys = frozenset(read_config_keys(str(path)))
    assert parser.parse_args_and_config(argv) == TrlParser(arguments).parse_args_and_config(argv)


def test_an_unknown_config_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "demo/stage1.yaml").read_text() + "num_train_epoch: 3\n")  # misspelled
    with pytest.raises(ValueError, match="num_train_epoch"):
        TrlParser(recipe_arguments("stage1")).parse_args_and_config(["--config", str(bad)])


# A KB pre-training config -> the CPU fine-tuning configs that start from its model. The pre-trained
# linker is scored on real text (its zero-shot test) and fine-tuned with these settings: a shorter
# max_source_length cut 441 of NCBI's 960 test sources (2,695 of BC5CDR-disease's 4,363) in the
# zero-shot scores, while the KB clauses it trains on never reach it.
FINE_TUNED_FROM = {
    "medic/pretrain": ("ncbi/stage1_cpu", "bc5cdr-disease/stage1_cpu"),
    "mesh-chem/pretrain": ("bc5cdr-chemical/stage1_cpu",),
    "demo/pretrain": ("demo/stage1",),
}


@pytest.mark.parametrize("pretrain", sorted(FINE_TUNED_FROM))
def test_pretraining_links_real_text_as_its_fine_tuning_does(pretrain):
    read = lambda name: yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())  # noqa: E731
    for fine_tune in FINE_TUNED_FROM[pretrain]:
        for key in ("max_source_length", "max_context_words", "lowercase"):
            assert read(pretrain)[key] == read(fine_tune)[key], f"{pretrain} vs {fine_tune}: {key}"
