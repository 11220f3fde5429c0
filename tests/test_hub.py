"""Pushing linkers and preference pairs to the Hub and loading them back, against a local stand-in
of the Hub HTTP API (tests/hub_stub.py): the real huggingface_hub and datasets calls, no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.errors import RepositoryNotFoundError

from angel_trl.data.arguments import DataArguments
from angel_trl.evaluation import scores_table
from angel_trl.hub import data_files, dataset_card, model_card, push_checkpoint, push_pairs, take_over_push
from angel_trl.linking.linker import EntityLinker
from angel_trl.data.names import NameTable
from angel_trl.training.stage2 import load_pairs
from tests.conftest import TOY_MENTIONS, toy_documents, write_jsonl
from tests.hub_stub import HubStub

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_stub_token"
INPUTS = ["Patients with [ST] lung cancer [ET] were treated.", "Severe combined immunodeficiency due to [ST] ADA [ET] in two children.", "A sweat test confirmed [ST] CF [ET] in the infant."]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The stub, with huggingface_hub and datasets pointed at it.

    Both libraries read HF_ENDPOINT (and the cache and Xet switches) into constants when imported,
    which has happened by now, so the constants are patched; the environment is set as well for the
    recipes run as subprocesses. Xet is off: uploads go through the preupload / LFS / commit API.
    """
    import datasets.config
    import huggingface_hub.constants as hf_constants

    cache = tmp_path_factory.mktemp("hf_cache")
    with HubStub() as stub, pytest.MonkeyPatch.context() as mp:
        env = {
            "HF_ENDPOINT": stub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0", "HF_HUB_CACHE": str(cache / "hub"), "HF_DATASETS_CACHE": str(cache / "datasets"), "HF_TOKEN": TOKEN,
        }
        for key, value in env.items():
            mp.setenv(key, value)
        for name, value in {
            "ENDPOINT": stub.endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": stub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True, "HF_HUB_OFFLINE": False, "HF_HUB_CACHE": env["HF_HUB_CACHE"],
        }.items():
            mp.setattr(hf_constants, name, value)
        for name, value in {
            "HF_ENDPOINT": stub.endpoint,
            "HUB_DATASETS_URL": stub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False, "HF_DATASETS_CACHE": Path(env["HF_DATASETS_CACHE"]),
        }.items():
            mp.setattr(datasets.config, name, value)
        yield stub
        assert not stub.unhandled, f"calls the stub does not serve: {stub.unhandled}"


@pytest.fixture(scope="module")
def pushed_linker(hub, trained_toy, tmp_path_factory):
    """A copy of the toy linker with the leftovers of a run (a checkpoint, a pickle), pushed."""
    out = tmp_path_factory.mktemp("pushed") / "toy-linker"
    shutil.copytree(trained_toy[0], out)
    (out / "checkpoint-3").mkdir()
    (out / "checkpoint-3" / "optimizer.pt").write_bytes(b"state")
    (out / "training_args.bin").write_bytes(b"pickle")
    info = push_checkpoint(out, "tester/toy-linker", token=TOKEN, data_files={"KB": "kb.jsonl"})
    return out, info


def test_push_checkpoint_uploads_the_linker_directory(hub, pushed_linker):
    out, info = pushed_linker
    repo = hub.repos[("models", "tester/toy-linker")]
    assert info.oid == repo.head and repo.messages == ["initial commit", "Upload angel-trl linker"]
    files = repo.latest
    for name in ("model.safetensors", "config.json", "tokenizer.json", "trie.npz", "names.jsonl", "kb.jsonl", "linker_config.json", "stage1_results.json", "training_args.json", "README.md"):
        assert name in files and files[name].content == (out / name).read_bytes(), name
    assert not any(p.startswith("checkpoint-") or p.endswith((".bin", ".pt")) for p in files)
    assert files["model.safetensors"].lfs and files["trie.npz"].lfs and not files["names.jsonl"].lfs  # both upload paths used
    assert f"Bearer {TOKEN}" in hub.authorizations


def test_linker_from_hub_links_like_the_local_directory(hub, pushed_linker, trained_toy):
    local = EntityLinker.from_pretrained(trained_toy[0])
    remote = EntityLinker.from_pretrained("tester/toy-linker")
    for a, b in zip(local.link(INPUTS), remote.link(INPUTS)):
        assert [(c.concept_id, c.name) for c in a.candidates] == [(c.concept_id, c.name) for c in b.candidates]
        assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates], abs=1e-5)
    assert remote.kb is not None and len(remote.kb.concepts) == len(local.kb.concepts)
    # only the linker files were downloaded, at the pushed commit, into the (test) Hub cache
    snapshot = Path(os.environ["HF_HUB_CACHE"]) / "models--tester--toy-linker" / "snapshots" / pushed_linker[1].oid
    fetched = {p.name for p in snapshot.iterdir()}
    assert {"trie.npz", "names.jsonl", "kb.jsonl", "linker_config.json", "model.safetensors"} <= fetched
    assert not fetched & {"README.md", "predictions_dev.jsonl", ".gitattributes"}
    again = EntityLinker.from_pretrained("tester/toy-linker", revision=pushed_linker[1].oid, num_beams=4, top_k=3)
    assert again.config.num_beams == 4


def test_linker_from_hub_cache_when_offline(hub, pushed_linker, monkeypatch):
    import huggingface_hub.constants as hf_constants

    EntityLinker.from_pretrained("tester/toy-linker")  # cached
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    requests = len(hub.requests)
    assert EntityLinker.from_pretrained("tester/toy-linker").table.names
    assert len(hub.requests) == requests


def test_from_pretrained_errors(hub, tmp_path, trained_toy):
    with pytest.raises(FileNotFoundError, match="no such linker directory"):
        EntityLinker.from_pretrained(tmp_path / "not" / "there")
    with pytest.raises(RepositoryNotFoundError):
        EntityLinker.from_pretrained("tester/missing")
    with pytest.raises(ValueError, match="local directory"):
        EntityLinker.from_pretrained(trained_toy[0], revision="main")


def test_model_card(trained_toy):
    out, summary = trained_toy
    files = data_files(DataArguments(kb_path="data/kb.jsonl", train_file="data/train.jsonl"), **{"train pairs": "tester/pairs"})
    card = model_card(out, "tester/toy-linker", base_model=None, data_files=files, datasets=[str(out), "tester/pairs"])
    parsed = ModelCard(card)
    assert parsed.data.library_name == "transformers" and {"angel-trl", "entity-linking", "biomedical"} <= set(parsed.data.tags)
    assert parsed.data.datasets == ["tester/pairs"] and parsed.data.base_model is None  # local paths stay out of the metadata
    assert scores_table({"dev": summary["dev"]}).splitlines()[-1] in card  # acc@1 / acc@5 / seen / unseen, as printed
    assert f"{summary['dev']['acc@1']:.1f}" in card
    assert f"| concepts | {summary['kb']['concepts']} |" in card and f"| KB names (with synonyms) | {summary['kb']['names']} |" in card
    assert f"| names in the trie (normalised, distinct) | {len(NameTable.load(out / 'names.jsonl').names)} |" in card
    assert "stage 1" in card and "| KB (jsonl) | `data/kb.jsonl` |" in card and "| train pairs | `tester/pairs` |" in card and "| seed | 0 |" in card
    assert 'EntityLinker.from_pretrained("tester/toy-linker")' in card and "angel-trl link tester/toy-linker --text" in card


def mine_splits(trained_toy, toy_kb, tmp_path):
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.mining import MiningConfig, mine_pairs

    linker = EntityLinker.from_pretrained(trained_toy[0])
    mining = MiningConfig(num_beams=6)
    pairs, summaries = {}, {}
    for split, mentions in (("train", TOY_MENTIONS[:5]), ("dev", TOY_MENTIONS[5:])):
        corpus = read_corpus_jsonl(write_jsonl(tmp_path / f"{split}.jsonl", toy_documents(mentions, prefix=split)))
        pairs[split], summaries[split] = mine_pairs(linker, corpus, toy_kb, mining, show_progress=False)
    return pairs, summaries, asdict(mining)


def test_push_pairs_and_load_them_by_id(hub, trained_toy, toy_kb, tmp_path):
    pairs, summaries, mining = mine_splits(trained_toy, toy_kb, tmp_path)
    assert len(pairs["train"]) and len(pairs["dev"])
    repo_id = push_pairs(pairs, "tester/toy-pairs", summaries, token=TOKEN, model="tester/toy-linker", mining=mining)
    assert repo_id == "tester/toy-pairs"
    for split in ("train", "dev"):
        assert load_pairs(repo_id, split=split).to_list() == pairs[split].to_list()
    repo = hub.repos[("datasets", repo_id)]
    assert any(p.startswith("data/train-") and p.endswith(".parquet") for p in repo.latest)
    card = DatasetCard(repo.latest["README.md"].content.decode())
    # push_to_hub kept our card and added its own metadata (data files per split, features)
    assert {c["split"] for c in card.data.configs[0]["data_files"]} == {"train", "dev"} and "dataset_info" in card.data.to_dict()
    assert "angel-trl" in card.data.tags
    text = card.text
    for split, s in summaries.items():
        assert f"## Split `{split}` (rule `paper`)" in text
        assert f"| mentions | {s['mentions']} |" in text and f"| pairs | {s['pairs']} |" in text and f"| top-1 correct share | {s['top1_correct_share']} |" in text
    assert "| `chosen` |" in text and "| `rejected_score` |" in text and "tester/toy-linker" in text


def test_dataset_card_counts_pairs_per_case():
    pairs = {"train": Dataset.from_dict({"chosen": ["a", "b", "c"], "case": ["misranked", "misranked", "top1_correct"]})}
    card = dataset_card({"train": {"rule": "all", "mentions": 4, "mentions_linked": 4, "pairs": 3, "top1_correct_share": 0.5, "case_misranked": 1, "skipped_nil": 2}}, pairs)
    assert "| pairs: misranked | 2 |" in card and "| pairs: top1_correct | 1 |" in card
    assert "| mentions: misranked | 1 |" in card and "| skipped: nil | 2 |" in card and "rule `all`" in card


def test_load_pairs_local_paths(tmp_path):
    train = Dataset.from_dict({"prompt": ["p"], "chosen": ["c"], "rejected": ["r"]})
    dev = Dataset.from_dict({"prompt": ["q"], "chosen": ["d"], "rejected": ["s"]})
    train.save_to_disk(str(tmp_path / "train"))
    DatasetDict({"train": train, "dev": dev}).save_to_disk(str(tmp_path / "both"))
    assert load_pairs(str(tmp_path / "train")).to_list() == train.to_list()
    assert load_pairs(str(tmp_path / "both"), split="dev").to_list() == dev.to_list()


def test_take_over_push_turns_off_the_trainers_pushes(tmp_path, monkeypatch):
    from angel_trl.errors import FieldError
    from angel_trl.trainers import Stage1Config

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    config = Stage1Config(output_dir=str(tmp_path / "run"), push_to_hub=True, hub_private_repo=True, use_cpu=True)
    target = take_over_push(config)
    assert not config.push_to_hub and target.repo_id == "run" and target.private is True
    assert take_over_push(config) is None  # already taken over
    # No token anywhere: refused before training, not when the push comes hours later.
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(FieldError, match="push_to_hub.*needs a Hugging Face token"):
        take_over_push(Stage1Config(output_dir=str(tmp_path / "run2"), push_to_hub=True, use_cpu=True))
    assert take_over_push(Stage1Config(output_dir=str(tmp_path / "run3"), push_to_hub=True, hub_token=TOKEN, use_cpu=True)).token == TOKEN


def run_recipe(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_recipes_push_and_load_by_hub_id(hub, toy_dir, tmp_path):
    """stage 1 pushes its linker, mining reads it and pushes pairs, stage 2 reads both by id and pushes."""
    data = ["--kb_path", str(toy_dir / "kb.jsonl"), "--train_file", str(toy_dir / "train.jsonl"), "--dev_file", str(toy_dir / "train.jsonl")]
    # Checkpoints every step: the Trainer would push each one (and create the repo up front) on its own.
    run = ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1", "--eval_strategy", "no", "--use_cpu", "true", "--report_to", "none", "--link_num_beams", "5", "--push_to_hub", "true"]
    creates = hub.requests.count("POST /api/repos/create")
    run_recipe(["recipes/stage1.py", *data, "--output_dir", str(tmp_path / "s1"), "--model_size", "tiny", *run, "--hub_model_id", "tester/recipe-stage1"])
    repo = hub.repos[("models", "tester/recipe-stage1")]
    assert repo.messages == ["initial commit", "Upload angel-trl linker"] and hub.requests.count("POST /api/repos/create") == creates + 1
    assert "linker_config.json" in repo.latest and not any(p.startswith("checkpoint-") for p in repo.latest)
    assert (tmp_path / "s1" / "README.md").read_bytes() == repo.latest["README.md"].content

    pairs_dir = tmp_path / "pairs"
    run_recipe(["recipes/mine.py", "--model_dir", "tester/recipe-stage1", "--output_dir", str(pairs_dir), "--num_beams", "4", "--top_k", "4", "--gold_fallback", "true",
                *data, "--push_to_hub", "true", "--hub_dataset_id", "tester/recipe-pairs"])
    summaries = json.loads((pairs_dir / "mining_summary.json").read_text())
    assert load_pairs("tester/recipe-pairs", split="dev").to_list() == load_pairs(str(pairs_dir / "dev")).to_list()
    assert f"| pairs | {summaries['train']['pairs']} |" in (pairs_dir / "README.md").read_text()

    run_recipe(["recipes/stage2_dpo.py", "--stage1_model", "tester/recipe-stage1", "--train_pairs", "tester/recipe-pairs", "--dev_pairs", "tester/recipe-pairs", *data,
                "--output_dir", str(tmp_path / "s2"), "--per_device_train_batch_size", "4", "--loss_type", "sigmoid", "sft", "--bf16", "false", *run, "--hub_model_id", "tester/recipe-stage2"])
    repo = hub.repos[("models", "tester/recipe-stage2")]
    assert repo.messages == ["initial commit", "Upload angel-trl linker"]
    result = json.loads(repo.latest["stage2_results.json"].content)
    assert result["pairs"] == summaries["train"]["pairs"] and result["dev_pairs"] == summaries["dev"]["pairs"]
    card = ModelCard(repo.latest["README.md"].content.decode())
    assert card.data.base_model == "tester/recipe-stage1" and card.data.datasets == ["tester/recipe-pairs"] and "stage 2" in card.text


def test_sample_pairs_is_seeded_subset_and_leaves_input_dir_alone(tmp_path):
    from angel_trl.training.stage2 import sample_pairs

    pairs = Dataset.from_dict({"prompt": [f"p{i}" for i in range(50)], "chosen": [f"c{i}" for i in range(50)], "rejected": [f"r{i}" for i in range(50)]})
    pairs.save_to_disk(str(tmp_path / "pairs"))
    before = sorted(p.name for p in (tmp_path / "pairs").iterdir())
    loaded = load_pairs(str(tmp_path / "pairs"))
    a, b, c = sample_pairs(loaded, 10, seed=1), sample_pairs(loaded, 10, seed=1), sample_pairs(loaded, 10, seed=2)
    assert len(a) == 10 and a.to_list() == b.to_list() and a.to_list() != c.to_list()
    assert {r["prompt"] for r in a} <= set(pairs["prompt"]) and len({r["prompt"] for r in a}) == 10
    assert a["prompt"] != pairs["prompt"][:10]  # a random sample, not the head
    assert sample_pairs(loaded, None, 1).to_list() == pairs.to_list() == sample_pairs(loaded, 500, 1).to_list()
    a.add_column("input_ids", [[1]] * 10)  # what the trainer does next
    assert sorted(p.name for p in (tmp_path / "pairs").iterdir()) == before
    with pytest.raises(ValueError, match="max_train_pairs"):
        sample_pairs(loaded, 0, 1)
