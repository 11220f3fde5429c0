"""KB pre-training corpus (ANGEL_PT): templates, targets, negatives, shards and resume, and training on it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from angel_trl.text.examples import ExampleConfig
from angel_trl.data.kb import read_kb_jsonl
from angel_trl.pretraining.corpus import PretrainCorpusConfig
from angel_trl.pretraining.shards import MANIFEST, PretrainCorpusBuilder, load_positive_rows, load_pretrain_split, read_manifest
from angel_trl.text.tfidf import TfidfNameMatcher

from tests.conftest import TOY_KB, write_jsonl

ROOT = Path(__file__).resolve().parents[2]

# The toy KB plus a single-name concept, a concept with many names (so the listed synonyms are a
# sample) and a definition.
PT_KB = [
    *[dict(c, definition="An inherited disease of the exocrine glands affecting lungs and pancreas") if c["id"] == "C5" else c for c in TOY_KB],
    {"id": "C8", "names": ["mucopolysaccharidosis"]},
    {"id": "C9", "names": ["chronic kidney disease", "chronic renal disease", "chronic kidney failure", "chronic renal failure", "CKD", "chronic nephropathy"]},
]


@pytest.fixture(scope="module")
def pt_kb(tmp_path_factory):
    return read_kb_jsonl(write_jsonl(tmp_path_factory.mktemp("pt") / "kb.jsonl", PT_KB))


def build(kb, seed=0, **overrides):
    config = PretrainCorpusConfig(**{"context_synonyms": 2, "negatives_per_name": 2, **overrides})
    return PretrainCorpusBuilder(kb, config, ExampleConfig(max_context_words=5), seed=seed)


def positive_rows(corpus):
    d = corpus.positives.to_dict()
    return list(zip(d["source"], d["prompt"], d["target"], d["kind"]))


def test_templates_and_most_similar_target(pt_kb):
    builder = build(pt_kb)
    corpus = builder.build()
    table = builder.table
    matcher = TfidfNameMatcher(table)
    for source, prompt, target, kind in positive_rows(corpus):
        name = prompt.removesuffix(" is")
        head = f"[ST] {name} [ET]"
        assert source.startswith(head)
        # The target is the most similar other name of a concept that has the source name.
        expected = set()
        for cid in table.concept_ids[table.index_of(name)]:
            own = table.names_of_concept(cid)
            others = [j for j in own if table.names[j] != name]
            expected.add(table.names[matcher.top_names(name, others, 1, avoid_shared=True)[0]] if others else name)
        assert target in expected, (source, target, expected)
        if kind == "pt_synonyms":
            listed = source.removeprefix(f"{head} has synonyms such as ").split(", ")
            assert 1 <= len(listed) <= 2 and name not in listed and target not in listed
            cid = next(c for c in table.concept_ids[table.index_of(name)] if set(listed) <= {table.names[j] for j in table.names_of_concept(c)})
            assert target in {table.names[j] for j in table.names_of_concept(cid)}
        elif kind == "pt_definition":
            # Lowercased and cut to max_context_words words.
            assert source == f"{head} is defined as an inherited disease of the"
        else:
            assert kind == "pt_name" and source == head
    rows = positive_rows(corpus)
    # "ada" is a name of C2 and of C3: one row for each, each with its own concept's target.
    assert sorted(t for s, _, t, _ in rows if s.startswith("[ST] ada [ET]")) == ["ada deficiency", "american diabetes association"]
    # A two-name concept: no synonym left to list once the target is out.
    assert ("[ST] type 1 diabetes [ET]", "type 1 diabetes is", "insulin-dependent diabetes", "pt_name") in rows
    # Definition rows come in addition to the synonym rows, with the same target.
    cf = [r for r in rows if r[1] == "cystic fibrosis is"]
    assert sorted(r[3] for r in cf) == ["pt_definition", "pt_synonyms"] and len({r[2] for r in cf}) == 1
    counts = corpus.summary["counts"]
    assert counts["rows_pt_definition"] == 3 and counts["source_names"] == len(table.names) + 1  # "ada" twice
    assert corpus.summary["positive_rows"] == len(rows)


def test_negatives_are_nearest_names_of_other_concepts(pt_kb):
    builder = build(pt_kb, negatives_per_name=3)
    corpus = builder.build()
    table = builder.table
    matcher = TfidfNameMatcher(table)
    pairs = corpus.pairs.to_list()
    assert corpus.summary["pairs"] == len(pairs) > 0
    by_row: dict[str, list[dict]] = {}
    for p in pairs:
        assert p["case"] == "kb_tfidf" and p["decoder_prompt"] == f"{p['mention']} is"
        gold = set(p["gold_ids"])
        rejected_ids = set(table.concept_ids[table.index_of(p["rejected"])])
        # Never a name the positive concept has, not even a shared one ("ada" of C2 vs C3).
        assert not gold & rejected_ids and p["rejected_id"] in rejected_ids and p["rejected"] != p["chosen"]
        by_row.setdefault(p["mention_id"], []).append(p)
    for rows in by_row.values():
        name, cid = rows[0]["mention"], rows[0]["gold_ids"][0]
        # Brute force: every name scored, own-concept names out, the best name of each other concept.
        sims = matcher.similarities(name, range(len(table)))
        order = sorted(range(len(table)), key=lambda j: (-sims[j], j))
        expected, used = [], set()
        for j in order:
            ids = table.concept_ids[j]
            if sims[j] <= 0 or cid in ids or used & set(ids):
                continue
            used.update(ids)
            expected.append(table.names[j])
        assert [r["rejected"] for r in sorted(rows, key=lambda r: r["rejected_rank"])] == expected[:3]
    # "ada" (one 3-gram) of C3 is closest to C2's "ada deficiency"; "ada" of C2 finds no name of
    # another concept with that 3-gram ("ada" itself is C2's too): no pair, counted.
    ada = [(p["gold_ids"][0], p["rejected"]) for p in pairs if p["mention"] == "ada"]
    assert ada[0] == ("C3", "ada deficiency") and all(g == "C3" for g, _ in ada)
    assert corpus.summary["counts"]["names_short_of_negatives"] > 0


def test_a_name_shared_with_the_positive_concept_is_never_its_negative():
    from angel_trl.data.kb import Concept, KnowledgeBase

    kb = KnowledgeBase([Concept("X", ["ada deficiency", "ada"]), Concept("Y", ["ada protein", "ada"]), Concept("Z", ["adalimumab"])])
    pairs = build(kb, negatives_per_name=3).build().pairs.to_list()
    x = [p for p in pairs if p["mention"] == "ada deficiency"]
    # "ada" is Y's name too and the nearest name to "ada deficiency", but also X's: never rejected.
    assert [p["rejected"] for p in x] == ["ada protein", "adalimumab"] and [p["rejected_id"] for p in x] == ["Y", "Z"]
    assert all(p["chosen"] == "ada" for p in x)
    ada = {(p["gold_ids"][0], p["rejected"]) for p in pairs if p["mention"] == "ada"}
    assert ada == {("X", "ada protein"), ("X", "adalimumab"), ("Y", "ada deficiency"), ("Y", "adalimumab")}


def test_single_name_concepts_are_counted(pt_kb):
    kept = build(pt_kb).build()
    assert ("[ST] mucopolysaccharidosis [ET]", "mucopolysaccharidosis is", "mucopolysaccharidosis", "pt_name") in positive_rows(kept)
    assert kept.summary["counts"]["single_name_concepts"] == 1
    skipped = build(pt_kb, single_name_concepts="skip").build()
    assert not any(r[1] == "mucopolysaccharidosis is" for r in positive_rows(skipped))
    assert skipped.summary["counts"]["skipped_single_name_concepts"] == 1
    assert skipped.summary["positive_rows"] == kept.summary["positive_rows"] - 1
    with pytest.raises(ValueError, match="single_name_concepts"):
        PretrainCorpusConfig(single_name_concepts="drop")


def test_streamed_shards_equal_in_memory_rows(pt_kb, tmp_path):
    in_memory = build(pt_kb).build()
    # Other shard and similarity-chunk sizes: the rows must not depend on them.
    summary = build(pt_kb, concepts_per_shard=2, similarity_chunk_size=3).write(tmp_path / "corpus", show_progress=False)
    assert summary["shards"] == summary["num_shards"] == 5 and summary["complete"] and summary["shards_skipped"] == 0
    assert summary["shards_written"] == 5 and summary["names_written"] == summary["counts"]["source_names"]
    assert load_positive_rows(tmp_path / "corpus").to_dict() == in_memory.positives.to_dict()
    assert load_pretrain_split(tmp_path / "corpus", "pairs").to_list() == in_memory.pairs.to_list()
    assert summary["counts"] == in_memory.summary["counts"]
    # Plain `datasets` reads the shards without our code.
    from datasets import load_dataset

    files = sorted(str(p) for p in (tmp_path / "corpus" / "pairs").glob("*.parquet"))
    plain = load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert plain.column_names == in_memory.pairs.column_names and len(plain) == len(in_memory.pairs)


def test_same_seed_same_rows(pt_kb):
    first, again = build(pt_kb, seed=3).build(), build(pt_kb, seed=3).build()
    assert positive_rows(first) == positive_rows(again) and first.pairs.to_list() == again.pairs.to_list()
    # The seed only picks which synonyms are listed (C9 has more than context_synonyms to pick from).
    others = [positive_rows(build(pt_kb, seed=s).build()) for s in range(4, 8)]
    assert any(rows != positive_rows(first) for rows in others)
    assert all([r[1:] for r in rows] == [r[1:] for r in positive_rows(first)] for rows in others)


def test_resume_after_a_partial_run(pt_kb, tmp_path):
    full, partial = tmp_path / "full", tmp_path / "partial"
    build(pt_kb, concepts_per_shard=2).write(full, show_progress=False)
    shutil.copytree(full, partial)
    # Simulate a run killed during the last shard: its files and manifest entry are gone.
    manifest = json.loads((partial / MANIFEST).read_text())
    last = sorted(manifest["shards"])[-1]
    for f in manifest["shards"].pop(last)["files"]:
        (partial / f).unlink()
    (partial / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="only 4 of 5 shards"):
        load_pretrain_split(partial, "positives")
    done_before = {p: p.stat().st_mtime_ns for p in (partial / "positives").glob("*.parquet")}
    summary = build(pt_kb, concepts_per_shard=2).write(partial, show_progress=False)
    assert summary["shards_skipped"] == 4 and summary["complete"]
    assert all(p.stat().st_mtime_ns == t for p, t in done_before.items())  # finished shards untouched
    for split in ("positives", "pairs"):
        assert load_pretrain_split(partial, split).to_list() == load_pretrain_split(full, split).to_list()
    assert read_manifest(partial)["shards"] == read_manifest(full)["shards"]
    # Another config in the same directory is refused rather than mixed in.
    with pytest.raises(ValueError, match=f"{MANIFEST}.*another KB or config"):
        build(pt_kb, concepts_per_shard=2, negatives_per_name=1).write(partial, show_progress=False)


def test_time_boxed_build_writes_the_first_missing_shards_then_finishes(pt_kb, tmp_path):
    full, boxed = tmp_path / "full", tmp_path / "boxed"
    build(pt_kb, concepts_per_shard=2).write(full, show_progress=False)
    first = build(pt_kb, concepts_per_shard=2).write(boxed, show_progress=False, max_shards=2)
    assert (first["shards"], first["shards_written"], first["complete"]) == (2, 2, False)
    assert sorted(read_manifest(boxed)["shards"]) == ["shard-00000", "shard-00001"]
    assert first["names_written"] == first["counts"]["source_names"] > 0  # what this call generated
    rest = build(pt_kb, concepts_per_shard=2).write(boxed, show_progress=False, max_shards=10)
    assert (rest["shards_skipped"], rest["shards_written"], rest["complete"]) == (2, 3, True)
    assert rest["names_written"] == rest["counts"]["source_names"] - first["names_written"]
    assert corpus_files(boxed) == corpus_files(full)
    with pytest.raises(ValueError, match="max_shards must be at least 1"):
        build(pt_kb).write(tmp_path / "none", show_progress=False, max_shards=0)


def corpus_files(corpus_dir):
    """Every file of a written corpus (manifest included) and its bytes."""
    return {str(f.relative_to(corpus_dir)): f.read_bytes() for f in sorted(Path(corpus_dir).rglob("*")) if f.is_file()}


def test_worker_processes_write_the_same_corpus(pt_kb, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert build(pt_kb, concepts_per_shard=2).num_shards == 5  # more shards than workers
    summary_one = build(pt_kb, concepts_per_shard=2).write(one, show_progress=False)
    summary_two = build(pt_kb, concepts_per_shard=2, num_proc=2).write(two, show_progress=False)
    assert summary_two == summary_one
    # Byte for byte: parquet shards and manifest (shard entries in key order whatever finished first).
    assert corpus_files(two) == corpus_files(one)
    # In memory too, and `write`'s argument overrides the config.
    in_memory, parallel = build(pt_kb, concepts_per_shard=2).build(), build(pt_kb, concepts_per_shard=2).build(num_proc=2)
    assert positive_rows(parallel) == positive_rows(in_memory) and parallel.pairs.to_list() == in_memory.pairs.to_list()
    assert parallel.summary == in_memory.summary


def test_worker_processes_resume_a_partial_run(pt_kb, tmp_path):
    full, partial = tmp_path / "full", tmp_path / "partial"
    build(pt_kb, concepts_per_shard=2).write(full, show_progress=False)
    shutil.copytree(full, partial)
    # Two shards lost (one in the middle): the workers redo them, out of order if they like.
    manifest = json.loads((partial / MANIFEST).read_text())
    for key in ("shard-00001", "shard-00004"):
        for f in manifest["shards"].pop(key)["files"]:
            (partial / f).unlink()
    (partial / MANIFEST).write_text(json.dumps(manifest))
    summary = build(pt_kb, concepts_per_shard=2).write(partial, show_progress=False, num_proc=2)
    assert summary["shards_skipped"] == 3 and summary["complete"]
    assert corpus_files(partial) == corpus_files(full)
    for split in ("positives", "pairs"):
        assert load_pretrain_split(partial, split).to_list() == load_pretrain_split(full, split).to_list()


def test_bad_num_proc(pt_kb, tmp_path):
    with pytest.raises(ValueError, match="num_proc: must be at least 1"):
        PretrainCorpusConfig(num_proc=0)
    with pytest.raises(ValueError, match="num_proc must be an integer of at least 1"):
        build(pt_kb).write(tmp_path / "corpus", show_progress=False, num_proc=0)
    assert not (tmp_path / "corpus").exists()  # refused before anything is written


def tiny_config(config_cls, output_dir, **kw):
    base = dict(output_dir=str(output_dir), max_steps=3, per_device_train_batch_size=8, learning_rate=3e-3, eval_strategy="no", save_strategy="no",
                logging_steps=50, seed=0, use_cpu=True, disable_tqdm=True, report_to="none", link_num_beams=4, link_top_k=4)
    return config_cls(**{**base, **kw})


@pytest.mark.slow
def test_pretrain_then_dpo_and_finetune_from_its_output(toy_dir, tmp_path):
    from transformers import AutoTokenizer

    from angel_trl.data.arguments import DataArguments
    from angel_trl.pretraining.training import train_pretrain
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.training.stage2 import Stage2Arguments, load_pairs, train_stage2
    from angel_trl.trainers import Seq2SeqDPOConfig, Stage1Config

    kb_only = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), test_file=str(toy_dir / "train.jsonl"))
    corpus = PretrainCorpusConfig(corpus_dir=str(tmp_path / "corpus"), pairs_dir=str(tmp_path / "pairs"), concepts_per_shard=3)
    pt = tmp_path / "pretrain"
    summary = train_pretrain(kb_only, ModelArguments(), corpus, tiny_config(Stage1Config, pt, model_size="tiny", max_source_length=64))
    assert summary["train_corpus"] is None and "acc@1" in summary["test"]  # zero-shot scores, no corpus trained on
    assert summary["rows"]["rows_pt_synonyms"] == summary["pretrain_corpus"]["counts"]["rows_pt_synonyms"] > 0
    for f in ("model.safetensors", "tokenizer.json", "trie.npz", "names.jsonl", "linker_config.json", "pretrain_corpus.json"):
        assert (pt / f).exists(), f

    # Negative-aware pre-training: the unchanged stage-2 code on the KB pairs.
    pairs = load_pairs(str(tmp_path / "pairs"))
    assert {"prompt", "decoder_prompt", "chosen", "rejected", "gold_ids", "rejected_id"} <= set(pairs.column_names)
    dpo = tmp_path / "pretrain_dpo"
    config = tiny_config(Seq2SeqDPOConfig, dpo, max_steps=2, per_device_train_batch_size=4, learning_rate=1e-4, bf16=False, loss_type=["sigmoid", "sft"], precompute_ref_log_probs=True)
    result = train_stage2(kb_only, Stage2Arguments(stage1_model=str(pt), train_pairs=str(tmp_path / "pairs")), config)
    assert result["pairs"] == len(pairs)

    # Fine-tuning (stage 1 on the corpus) from each pre-trained output reuses its tokenizer.
    corpus_data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"))
    for start in (pt, dpo):
        ft = tmp_path / f"finetune_{start.name}"
        summary = train_stage1(corpus_data, ModelArguments(model_name_or_path=str(start)), tiny_config(Stage1Config, ft, max_steps=2))
        assert summary["rows"]["rows_mention"] > 0
        assert AutoTokenizer.from_pretrained(ft).get_vocab() == AutoTokenizer.from_pretrained(pt).get_vocab()


@pytest.mark.slow
def test_pretrain_recipe_then_stage2_recipe_on_kb_pairs(toy_dir, tmp_path):
    data = ["--kb_path", str(toy_dir / "kb.jsonl"), "--test_file", str(toy_dir / "train.jsonl"), "--link_num_beams", "5", "--use_cpu", "true", "--report_to", "none"]
    pt, pairs = tmp_path / "pretrain", tmp_path / "pairs"
    cmd = [sys.executable, "recipes/pretrain.py", "--config", "recipes/configs/demo/pretrain.yaml", "--output_dir", str(pt),
           "--corpus_dir", str(tmp_path / "corpus"), "--pairs_dir", str(pairs), "--max_steps", "3", *data]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Zero-shot" in done.stdout and (pt / "stage1_results.json").exists()
    cmd = [sys.executable, "recipes/stage2_dpo.py", "--config", "recipes/configs/demo/pretrain_dpo.yaml", "--stage1_model", str(pt),
           "--train_pairs", str(pairs), "--output_dir", str(tmp_path / "dpo"), "--max_steps", "2", "--bf16", "false", *data]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "dpo" / "stage2_results.json").read_text())["pairs"] > 0


def test_pretraining_folders_that_would_overwrite_each_other_are_refused(tmp_path):
    from angel_trl.data.arguments import DataArguments
    from angel_trl.errors import FieldError
    from angel_trl.pretraining.corpus import PretrainCorpusConfig
    from angel_trl.pretraining.training import train_pretrain
    from angel_trl.training.stage1 import ModelArguments
    from angel_trl.trainers import Stage1Config

    with pytest.raises(FieldError, match="negatives_per_name.*is 0, so there are no pairs"):
        PretrainCorpusConfig(pairs_dir=str(tmp_path / "pairs"), negatives_per_name=0)
    with pytest.raises(FieldError, match="pairs_dir.*is corpus_dir"):
        PretrainCorpusConfig(pairs_dir=str(tmp_path / "c"), corpus_dir=str(tmp_path / "." / "c"))
    config = Stage1Config(output_dir=str(tmp_path / "model"), report_to=[])
    with pytest.raises(FieldError, match="pairs_dir.*is output_dir"):
        train_pretrain(DataArguments(kb_path=str(tmp_path / "kb.jsonl")), ModelArguments(), PretrainCorpusConfig(pairs_dir=str(tmp_path / "model")), config)
