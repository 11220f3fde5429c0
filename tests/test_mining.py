from dataclasses import replace
from pathlib import Path

import pytest

from angel_trl.linking.linker import Candidate
from angel_trl.mining import Pair, pairs_from_ranking


def ranking(*ids):
    return [Candidate(cid, f"name of {cid}", -float(i)) for i, cid in enumerate(ids)]


@pytest.mark.parametrize(
    "ids,gold,rule,fallback,pairs,case",
    [
        (["G", "A", "B"], {"G"}, "paper", False, [Pair(0, 1)], "top1_correct"),  # top-1 right: vs best wrong
        (["A", "B", "G", "C"], {"G"}, "paper", False, [Pair(2, 0), Pair(2, 1)], "misranked"),  # wrong above right only
        (["A", "G", "G2", "B"], {"G", "G2"}, "paper", False, [Pair(1, 0)], "misranked"),  # chosen = best-ranked correct
        (["A", "B"], {"G"}, "paper", False, [], "no_correct"),
        (["A", "B"], {"G"}, "paper", True, [Pair(-1, 0), Pair(-1, 1)], "no_correct"),  # gold fallback option
        (["G", "G2"], {"G", "G2"}, "paper", False, [], "all_correct"),
        ([], {"G"}, "paper", False, [], "empty"),
        (["A", "G", "B", "C"], {"G"}, "all", False, [Pair(1, 0), Pair(1, 2), Pair(1, 3)], "misranked"),
        (["G", "A", "B"], {"G"}, "all", False, [Pair(0, 1), Pair(0, 2)], "top1_correct"),
    ],
)
def test_pair_rules(ids, gold, rule, fallback, pairs, case):
    assert pairs_from_ranking(ranking(*ids), gold, rule, fallback) == (pairs, case)


def test_ties_follow_beam_order():
    cands = [Candidate("A", "ada", -1.0), Candidate("G", "ada", -1.0), Candidate("B", "b", -2.0)]
    # a name shared by a wrong and the gold concept, at the same score: the wrong one ranks first
    assert pairs_from_ranking(cands, {"G"}) == ([Pair(1, 0)], "misranked")


def test_unknown_rule():
    with pytest.raises(ValueError, match="paper"):
        pairs_from_ranking(ranking("A"), {"A"}, "tfidf")


def test_mining_on_a_trained_model_is_deterministic(trained_toy, toy_dir, toy_kb):
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs

    linker = EntityLinker.from_pretrained(trained_toy[0])
    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    ds, summary = mine_pairs(linker, corpus, toy_kb, MiningConfig(num_beams=6, top_k=5), show_progress=False)
    again, summary2 = mine_pairs(linker, corpus, toy_kb, MiningConfig(num_beams=6, top_k=5), show_progress=False)
    assert ds.to_list() == again.to_list() and summary == summary2
    assert summary["mentions"] == 8 and summary["top1_correct_share"] == 1.0  # the model is right on its training data
    assert summary["pairs"] == len(ds) == summary["case_top1_correct"] - summary.get("skipped_same_name", 0)
    for row in ds:
        assert row["chosen"] != row["rejected"] and row["rejected_id"] not in row["gold_ids"]
        assert toy_kb.canonical_id(row["rejected_id"]) and row["decoder_prompt"].endswith(" is")
    tfidf, tsummary = mine_pairs(linker, corpus, toy_kb, MiningConfig(rule="tfidf", tfidf_negatives=2), show_progress=False)
    assert len(tfidf) == 16 and tsummary["case_tfidf"] == 8
    for row in tfidf:  # TF-IDF negatives never share a concept with the gold
        assert not set(toy_kb.ids_for_name(row["rejected"])) & set(row["gold_ids"])


def test_several_rules_from_one_decoding_equal_their_own_runs(trained_toy, toy_dir, toy_kb, monkeypatch):
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, also_rule_dirs, mine_pairs, mine_pairs_by_rule

    linker = EntityLinker.from_pretrained(trained_toy[0])
    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    configs = [MiningConfig(rule=rule, num_beams=6, top_k=5, tfidf_negatives=2) for rule in ("paper", "official", "tfidf", "all")]
    alone = [mine_pairs(linker, corpus, toy_kb, c, show_progress=False) for c in configs]
    decodings = []
    link = EntityLinker.link
    monkeypatch.setattr(EntityLinker, "link", lambda self, *a, **k: decodings.append(1) or link(self, *a, **k))
    together = mine_pairs_by_rule(linker, corpus, toy_kb, configs, show_progress=False)
    assert len(decodings) == 1  # paper, official and all read one beam search; tfidf none
    for (ds, summary), (ds2, summary2) in zip(alone, together):
        assert ds.to_list() == ds2.to_list() and summary == summary2
    assert [s["rule"] for _, s in together] == ["paper", "official", "tfidf", "all"]
    assert also_rule_dirs("out/pairs", "paper", ["official"]) == {"official": Path("out/pairs-official")}
    for rules in (["paper"], ["official", "official"]):
        with pytest.raises(ValueError, match="named twice"):
            also_rule_dirs("out/pairs", "paper", rules)
    with pytest.raises(ValueError, match="'best' is not one of"):
        also_rule_dirs("out/pairs", "paper", ["best"])


def test_split_folds_partition_documents(toy_dir):
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.training.crossfit import split_folds

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    folds = split_folds(corpus, 3, seed=1)
    held_ids = [sorted(d.id for d in held.documents) for _, held in folds]
    assert sorted(i for ids in held_ids for i in ids) == sorted(d.id for d in corpus.documents)  # each doc held out once
    for rest, held in folds:
        assert not {d.id for d in rest.documents} & {d.id for d in held.documents}
    assert held_ids == [sorted(d.id for d in h.documents) for _, h in split_folds(corpus, 3, seed=1)]
    with pytest.raises(ValueError, match="at least 2"):
        split_folds(corpus, 1, 0)


@pytest.mark.slow
def test_cross_fit_mining_runs_every_fold(toy_dir, tmp_path):
    from angel_trl.training.crossfit import cross_fit_mine
    from angel_trl.data.arguments import DataArguments
    from angel_trl.mining import MiningConfig
    from angel_trl.training.stage1 import ModelArguments
    from angel_trl.trainers import Stage1Config

    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"))
    cfg = Stage1Config(output_dir=str(tmp_path), model_size="tiny", max_steps=3, eval_strategy="no", save_strategy="no", use_cpu=True, disable_tqdm=True, report_to="none")
    pairs, summary = cross_fit_mine(data, ModelArguments(), cfg, MiningConfig(num_beams=4, top_k=4), folds=2)
    assert summary["mentions_linked"] == 8 and set(summary["per_fold"]) == {"fold-0", "fold-1"}
    assert len(pairs) == summary["pairs"]
    assert (tmp_path / "fold-0" / "trie.npz").exists() and (tmp_path / "fold-1" / "trie.npz").exists()
    # One fold again: its finished model is reused (not retrained) and it mines the same pairs.
    weights = tmp_path / "fold-1" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    again, one = cross_fit_mine(data, ModelArguments(), cfg, MiningConfig(num_beams=4, top_k=4), folds=2, only_folds=[1])
    assert weights.stat().st_mtime_ns == before
    assert one["folds_mined"] == [1] and one["per_fold"] == {"fold-1": summary["per_fold"]["fold-1"]}
    assert again.to_list() == pairs.select(range(summary["per_fold"]["fold-0"]["pairs"], len(pairs))).to_list()
    with pytest.raises(ValueError, match="only_folds"):
        cross_fit_mine(data, ModelArguments(), cfg, MiningConfig(), folds=2, only_folds=[2])


def test_ambiguous_names_yield_pairs_with_names_of_their_own(trained_toy, toy_dir, toy_kb):
    """"ADA" names adenosine deaminase deficiency (C2) and the American Diabetes Association (C3): a
    pair "ada" vs "ada" teaches nothing, so chosen is a name of the gold concept alone and rejected a
    name of the wrong one that is no gold name."""
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs

    linker = EntityLinker.from_pretrained(trained_toy[0])
    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    ds, summary = mine_pairs(linker, corpus, toy_kb, MiningConfig(num_beams=6, top_k=5), show_progress=False)
    ada = [r for r in ds if r["mention"] == "ADA"]
    assert {tuple(r["gold_ids"]) for r in ada} == {("C2",), ("C3",)}
    table = linker.table
    for row in ds:
        gold = set(row["gold_ids"])
        assert set(table.concept_ids[table.index_of(row["chosen"])]) <= gold
        assert not set(table.concept_ids[table.index_of(row["rejected"])]) & gold
    assert "skipped_same_name" not in summary or summary["skipped_same_name"] == 0


def test_hybrid_negatives_find_the_confusable_concepts_a_narrow_beam_prunes(trained_toy, toy_dir, toy_kb):
    """With 2 beams most mentions finish on names of their gold concept alone, so the beam offers no
    negative; the hybrid's candidates (beam + TF-IDF-retrieved concepts, ranked by the model's exact
    log-prob) give the pairs a 6-beam search finds, with the same (exact) scores."""
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs

    linker = EntityLinker.from_pretrained(trained_toy[0])
    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")

    def mine(num_beams, top_k, source):
        ds, summary = mine_pairs(linker, corpus, toy_kb, MiningConfig(num_beams=num_beams, top_k=top_k, negatives_from=source), show_progress=False)
        assert summary["negatives_from"] == source
        return ds.to_list(), summary

    narrow, _ = mine(2, 2, "beam")
    hybrid, summary = mine(2, 2, "hybrid")
    assert (hybrid, summary) == mine(2, 2, "hybrid")  # deterministic
    wide, _ = mine(6, 5, "beam")
    key = lambda r: (r["mention_id"], r["chosen"], r["rejected"], r["rejected_id"])  # noqa: E731
    assert len(narrow) < len(hybrid) and sorted(map(key, hybrid)) == sorted(map(key, wide))
    by_key = {key(r): r for r in wide}
    for row in hybrid:
        assert row["rejected_score"] == pytest.approx(by_key[key(row)]["rejected_score"], abs=1e-4)
        assert row["chosen_score"] == pytest.approx(by_key[key(row)]["chosen_score"], abs=1e-4)


def test_unseen_concept_names_add_pairs_whose_chosen_is_an_untrained_concept(trained_toy, toy_dir, toy_kb):
    """Mined from half the toy corpus, the untrained concepts' KB names join the mentions: counted in
    the summary, each pair's gold an untrained concept, and the corpus's own pairs unchanged."""
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.data.unseen_concepts import is_unseen_concept_name
    from angel_trl.data.zero_shot import gold_concepts
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs, training_corpus_to_mine
    from angel_trl.text.examples import marked_source

    linker = EntityLinker.from_pretrained(trained_toy[0])
    full = read_corpus_jsonl(toy_dir / "train.jsonl")
    half = replace(full, documents=full.documents[:4])  # C1-C4 trained
    config = MiningConfig(num_beams=6, top_k=5, unseen_concept_names=10, unseen_concept_seed=3)
    corpus = training_corpus_to_mine(half, toy_kb, config)
    assert training_corpus_to_mine(half, toy_kb, MiningConfig()) is half
    ds, summary = mine_pairs(linker, corpus, toy_kb, config, show_progress=False)
    plain, _ = mine_pairs(linker, half, toy_kb, config, show_progress=False)
    assert summary["unseen_concept_names"] == 3 and summary["mentions"] == 4 + 3  # C5, C6, C7
    extra = [r for r in ds if is_unseen_concept_name(r["mention_id"])]
    assert summary["pairs_from_unseen_concept_names"] == len(extra) > 0
    assert [r for r in ds if not is_unseen_concept_name(r["mention_id"])] == plain.to_list()
    trained = gold_concepts(half, toy_kb)
    for row in extra:
        assert not set(row["gold_ids"]) & trained and row["prompt"] == marked_source("", row["mention"], "")  # no context
    again, summary_again = mine_pairs(linker, training_corpus_to_mine(half, toy_kb, config), toy_kb, config, show_progress=False)
    assert ds.to_list() == again.to_list() and summary == summary_again  # deterministic, corpus and all


@pytest.mark.parametrize("kwargs, message", [({"negatives_from": "retriever"}, "negatives_from"), ({"negatives_from": "hybrid", "rule": "official"}, "paper and all")])
def test_mining_config_refuses_unknown_negative_sources(kwargs, message):
    from angel_trl.mining import MiningConfig

    with pytest.raises(ValueError, match=message):
        MiningConfig(**kwargs)


def test_linker_keeps_every_beam_name_per_concept(trained_toy):
    from angel_trl.linking.linker import EntityLinker

    linker = EntityLinker.from_pretrained(trained_toy[0], num_beams=6, top_k=5)
    (result,) = linker.link(["Severe combined immunodeficiency due to [ST] ADA [ET] in two children."])
    assert [b.score for b in result.beam] == sorted((b.score for b in result.beam), reverse=True)
    for cand in result.candidates:
        assert cand.names[0] == cand.name and len(set(cand.names)) == len(cand.names)
        assert cand.names == [b.name for b in result.beam if cand.concept_id in b.concept_ids]
    shared = [b for b in result.beam if b.name == "ada"]
    assert not shared or set(shared[0].concept_ids) == {"C2", "C3"}


def test_official_rule_pairs_each_correct_name_with_every_wrong_name_above_it():
    from angel_trl.linking.linker import BeamName
    from angel_trl.mining import official_pairs

    beam = [BeamName("w1", -1.0, ["W"]), BeamName("g1", -1.5, ["G"]), BeamName("w2", -2.0, ["V"]), BeamName("s", -2.5, ["G", "W"]), BeamName("g2", -3.0, ["G"])]
    assert official_pairs(beam, {"G"}, top_k=5) == [(1, 0), (3, 0), (3, 2), (4, 0), (4, 2)]
    assert official_pairs(beam, {"G"}, top_k=2) == [(1, 0)]
    assert official_pairs(beam[1:2], {"G"}, top_k=5) == []  # top-1 correct: nothing ranked above it


# ---------------------------------------------------------------------------------------- saving: one unit
# Each write step of save_mined_pairs (owner, attribute, which call): a fault there must leave the old
# output or the new one, whole. Dataset.save_to_disk runs per split, atomic_write_text per file.
SAVE_STEPS = [("files", "_carry_entries", 0), ("Dataset", "save_to_disk", 0), ("Dataset", "save_to_disk", 1), ("mining", "atomic_write_text", 0),
              ("mining", "atomic_write_text", 1), ("files", "_exchange", 0), ("shutil", "rmtree", 0)]

FAULT_CHILD = """
import os, signal, sys
from datasets import Dataset
import angel_trl.data.files as files, angel_trl.mining as mining
from tests.test_mining import save_generation

owner, attr, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner = {"Dataset": Dataset, "files": files, "mining": mining, "shutil": files.shutil}[owner]
real, calls = getattr(owner, attr), []

def dying(*args, **kwargs):
    if len(calls) == index:
        os.kill(os.getpid(), signal.SIGKILL)
    calls.append(1)
    return real(*args, **kwargs)

setattr(owner, attr, dying)
save_generation(sys.argv[4], "new")
"""


def save_generation(out, tag: str) -> None:
    """Mined output whose every part (both splits, the summary, the card) is marked ``tag``."""
    from datasets import Dataset

    from angel_trl.mining import save_mined_pairs

    pairs = {s: Dataset.from_dict({"prompt": [f"{tag} {s}"], "chosen": ["a"], "rejected": ["b"]}) for s in ("train", "dev")}
    save_mined_pairs(out, pairs, {s: {"pairs": 1, "tag": tag} for s in pairs}, files={"README.md": f"{tag} card\n"})


def mined_state(out) -> str:
    """Which complete generation ``out`` holds ("old" / "new"), or what it holds when mixed."""
    import json

    from datasets import load_from_disk

    from angel_trl.data.files import LOCK_FILE

    names = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    if names != ["README.md", "dev", "mining_summary.json", "train"]:
        return f"entries {names}"
    tags = {load_from_disk(str(out / s))["prompt"][0].split()[0] for s in ("train", "dev")}
    tags |= {v["tag"] for v in json.loads((out / "mining_summary.json").read_text()).values()}
    tags.add((out / "README.md").read_text().split()[0])
    return tags.pop() if len(tags) == 1 else f"mixed {sorted(tags)}"


def test_mined_pairs_are_saved_as_one_unit(tmp_path):
    out = tmp_path / "pairs"
    save_generation(out, "old")
    assert mined_state(out) == "old"
    save_generation(out, "new")
    assert mined_state(out) == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


@pytest.mark.parametrize("owner,attr,index", SAVE_STEPS)
def test_an_interrupted_save_leaves_the_old_pairs_whole(monkeypatch, tmp_path, owner, attr, index):
    from datasets import Dataset

    import angel_trl.data.files as files
    import angel_trl.mining as mining

    out = tmp_path / "pairs"
    save_generation(out, "old")
    target = {"Dataset": Dataset, "files": files, "mining": mining, "shutil": files.shutil}[owner]
    real, calls = getattr(target, attr), []

    def dying(*args, **kwargs):
        if len(calls) == index:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, attr, dying)
    with pytest.raises(KeyboardInterrupt):
        save_generation(out, "new")
    monkeypatch.undo()
    # Up to the swap the old output stays; a fault in deleting the old one after it leaves the new.
    assert mined_state(out) == ("new" if attr == "rmtree" else "old")
    if attr != "rmtree":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]  # nothing left behind


@pytest.mark.parametrize("owner,attr,index", [SAVE_STEPS[2], SAVE_STEPS[5], SAVE_STEPS[6]])  # before, at and after the swap
def test_a_killed_save_leaves_old_or_new_pairs_whole(tmp_path, owner, attr, index):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "pairs"
    save_generation(out, "old")
    done = subprocess.run([sys.executable, "-c", FAULT_CHILD, owner, attr, str(index), str(out)], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == -9, done.stderr[-2000:]
    assert mined_state(out) == ("new" if attr == "rmtree" else "old")


def test_a_split_without_pairs_is_said_and_stage2_refuses_it_by_name(tmp_path, caplog):
    import logging

    from datasets import Dataset

    from angel_trl.errors import FieldError
    from angel_trl.mining import save_mined_pairs
    from angel_trl.training.stage2 import check_pairs_path

    empty = Dataset.from_dict({"prompt": [], "chosen": [], "rejected": []})
    with caplog.at_level(logging.WARNING, logger="angel_trl.mining"):
        save_mined_pairs(tmp_path, {"train": empty}, {"train": {"mentions": 3, "pairs": 0, "top1_correct_no_wrong": 3}})
    assert "no pairs mined from the train split" in caplog.text and '"top1_correct_no_wrong": 3' in caplog.text
    with pytest.raises(FieldError, match=r"train holds no pairs \(mining found none\); .*mining_summary.json counts what happened"):
        check_pairs_path("train_pairs", str(tmp_path / "train"), "train")


def test_stage2_says_when_its_dev_pairs_are_its_train_pairs(tmp_path, caplog):
    import logging

    from datasets import Dataset

    from angel_trl.training.stage2 import Stage2Arguments

    Dataset.from_dict({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}).save_to_disk(str(tmp_path / "train"))
    with caplog.at_level(logging.WARNING, logger="angel_trl.training.stage2"):
        Stage2Arguments(stage1_model="m", train_pairs=str(tmp_path / "train"), dev_pairs=str(tmp_path / "train")).check_files()
    assert "dev_pairs is train_pairs" in caplog.text
