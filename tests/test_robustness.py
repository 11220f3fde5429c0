"""Bad input never ends in a traceback or silent data loss: every case of the robustness issue.

Malformed lines name the file and line; empty files, wrong encodings and out-of-text offsets are
input errors; what is skipped (empty names, gold ids missing from the KB, cut contexts, names that
tokenise to nothing) is counted; outputs are written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from angel_trl.data.corpus import Corpus, Document, Mention, read_corpus_jsonl, read_pubtator
from angel_trl.errors import InputFormatError
from angel_trl.data.files import atomic_open, atomic_save_dataset, atomic_write_text, read_lines
from angel_trl.data.kb import Concept, KnowledgeBase, read_kb_jsonl, read_medic, read_mesh
from angel_trl.data.names import NameTable
from angel_trl.linking.trie import NameTrie

ROOT = Path(__file__).resolve().parent.parent
KB_LINE = '{"id": "D1", "names": ["lung cancer"]}\n'
DOC = {"id": "a", "text": "Lung cancer.", "mentions": [{"start": 0, "end": 11, "text": "Lung cancer", "ids": ["D1"]}]}


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def no_temporary_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------ encodings
@pytest.mark.parametrize("reader", [read_kb_jsonl, read_medic])
def test_latin1_file_names_file_line_and_byte(tmp_path, reader):
    line1 = KB_LINE if reader is read_kb_jsonl else "D1||lung cancer\n"
    f = write(tmp_path / "kb.txt", line1.encode() + "D2||Sjögren syndrome\n".encode("latin-1"))
    with pytest.raises(InputFormatError, match=rf"kb.txt:2: not valid UTF-8: byte 0xf6 at column 7 \(file offset {len(line1) + 6}\)") as e:
        reader(f)
    assert e.value.line == 2 and e.value.path == str(f)


def test_binary_and_utf16_files_are_input_errors(tmp_path):
    gz = write(tmp_path / "kb.jsonl.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)))
    with pytest.raises(InputFormatError, match=r"kb.jsonl.gz:1: not valid UTF-8"):
        read_kb_jsonl(gz)
    utf16 = write(tmp_path / "c.txt", "1|t|Lung.\n".encode("utf-16"))
    with pytest.raises(InputFormatError, match=r"c.txt:1: UTF-16"):
        read_pubtator(utf16)


def test_utf8_bom_and_crlf_are_accepted(tmp_path):
    kb = read_kb_jsonl(write(tmp_path / "kb.jsonl", "\ufeff" + KB_LINE.replace("\n", "\r\n")))
    assert kb.names("D1") == ["lung cancer"]
    medic = read_medic(write(tmp_path / "medic.txt", "\ufeffD1||lung cancer\r\n"))
    assert list(medic.concepts) == ["D1"]  # the BOM is not part of the first id
    corpus = read_pubtator(write(tmp_path / "c.txt", "\ufeff1|t|Lung cancer.\r\n1|a|x\r\n1\t0\t11\tLung cancer\tDisease\tD1\r\n"))
    assert corpus.mentions[0].text == "Lung cancer" and corpus.documents[0].id == "1"


def test_read_lines_ends_lines_at_lf_crlf_and_bare_cr(tmp_path):
    # JSON text may hold U+2028 (not a line end); a bare CR is one (old Mac files), as in Python's text mode.
    f = write(tmp_path / "x.txt", "a\u2028b\rc\nd\r\n\ne")
    assert list(read_lines(f)) == [(1, "a\u2028b"), (2, "c"), (3, "d"), (4, ""), (5, "e")]


# ------------------------------------------------------------------------------------ KB readers
@pytest.mark.parametrize(
    "line,problem",
    [
        ("no separator here", "expected 'ID"),
        ("||lung cancer", "needs an id"),
        ("MESH:||lung cancer", "needs an id"),  # empty once the prefix is stripped
        ("D2||", "needs an id and at least one name"),
        ("D2|| | ", "needs an id and at least one name"),
    ],
)
def test_medic_malformed_lines(tmp_path, line, problem):
    f = write(tmp_path / "medic.txt", f"# header\nD1||lung cancer\n{line}\n")
    with pytest.raises(InputFormatError, match=rf"medic.txt:3: .*{problem}"):
        read_medic(f)


@pytest.mark.parametrize(
    "line,problem",
    [
        ('{"id": "MESH:", "names": ["a"]}', "non-empty string 'id'"),
        ('{"id": 5, "names": ["a"]}', "non-empty string 'id'"),
        ('{"id": "X", "names": ["a", 3]}', "list of strings"),
        ('{"id": "X", "names": ["a"], "alt_ids": [7]}', "'alt_ids' must be a list of strings"),
        ('{"id": "X", "names": ["a"], "alt_ids": "Y"}', "'alt_ids' must be a list of strings"),
        ('{"id": "X", "names": ["a"], "definition": 1}', "'definition' must be a string"),
        ('["X", ["a"]]', "expected a JSON object"),
        ("[" * 100_000, "invalid JSON"),
    ],
)
def test_kb_jsonl_malformed_lines(tmp_path, line, problem):
    f = write(tmp_path / "kb.jsonl", KB_LINE + "\n" + line + "\n")
    with pytest.raises(InputFormatError, match=rf"kb.jsonl:3: .*{problem}"):
        read_kb_jsonl(f)


@pytest.mark.parametrize(
    "desc,supp,problem",
    [
        ("D1\tAspirin\t\n", None, r"desc.tsv:1: expected at least 4 tab-separated columns, got 3"),
        ("\tAspirin\t\tD02\t\n", None, r"desc.tsv:1: empty MeSH UI"),
        ("D1\t \t \tD02\t\n", None, r"desc.tsv:1: concept D1 has no name"),
        ("D1\tAspirin\t\tD02\t\n", "C1\n", r"supp.tsv:1: expected at least 2"),
        ("", "C1\tbevonium\t\tD1\n", r"desc.tsv: no MeSH records found \(empty file\?\)"),
        ("D1\tAspirin\t\tD02\t\n", "\n", r"supp.tsv: no MeSH records"),
        ("D1\tAbattoirs\t\tJ01\t\n", None, r"desc.tsv: no descriptor has a tree number starting with D"),
    ],
)
def test_mesh_malformed_and_empty_files(tmp_path, desc, supp, problem):
    d = write(tmp_path / "desc.tsv", desc)
    s = write(tmp_path / "supp.tsv", supp) if supp is not None else None
    with pytest.raises(InputFormatError, match=problem):
        read_mesh(d, s, ["D"])


@pytest.mark.parametrize(
    "name,content",
    [("kb.jsonl", ""), ("kb.jsonl", "\n  \n"), ("medic.txt", "# only a header\n"), ("desc.tsv", "")],
)
def test_empty_kb_files_name_the_file(tmp_path, name, content):
    f = write(tmp_path / name, content)
    reader = {"kb.jsonl": read_kb_jsonl, "medic.txt": read_medic, "desc.tsv": read_mesh}[name]
    with pytest.raises(InputFormatError, match=rf"{name}: no (concepts|MeSH records) found") as e:
        reader(f)
    assert e.value.line is None


def test_empty_names_are_skipped_and_counted(tmp_path):
    kb = read_kb_jsonl(write(tmp_path / "kb.jsonl", '{"id": "A", "names": ["lung  cancer", " ", "", "lung cancer"]}\n'))
    assert kb.names("A") == ["lung cancer"]  # whitespace collapsed, duplicate merged
    assert kb.stats()["empty_names_skipped"] == 2
    medic = read_medic(write(tmp_path / "medic.txt", "D1||a||b|\n"))
    assert medic.names("D1") == ["a", "b"] and medic.stats()["empty_names_skipped"] == 2
    # An empty MeSH synonym column means "no synonyms": nothing is skipped.
    mesh = read_mesh(write(tmp_path / "desc.tsv", "D1\tAspirin\t\tD02\t\nD2\tIbuprofen\tA|| \tD02\t\n"))
    assert mesh.names("D2") == ["Ibuprofen", "A"] and mesh.stats()["empty_names_skipped"] == 2
    # Concepts built in memory go through the same check: a blank name would be an empty trie path.
    memory = KnowledgeBase([Concept("X", ["ada", "\t"]), Concept("Y", ["  "])])
    assert memory.names("X") == ["ada"] and memory.stats()["empty_names_skipped"] == 2
    assert "" not in NameTable.from_kb(memory).names
    assert read_kb_jsonl(write(tmp_path / "ok.jsonl", KB_LINE)).stats()["empty_names_skipped"] == 0


# ------------------------------------------------------------------------------------ corpus readers
PUB_HEAD = "1|t|Lung cancer and ADA.\n1|a|x\n"


@pytest.mark.parametrize(
    "lines,lineno,problem",
    [
        ("1\t0\t11\tLung cancer\tDisease\n", 3, "expected >= 6 tab-separated columns"),
        ("1\t0\t11\tLung cancer\n", 3, "expected >= 6 tab-separated columns"),  # not a relation: it has offsets
        ("1\t0\n", 3, "expected >= 6 tab-separated columns"),
        ("1\tO\t11\tLung cancer\tDisease\tD1\n", 3, r"offsets 'O' '11' are not integers"),
        ("1\t0\t1_1\tLung cancer\tDisease\tD1\n", 3, r"offsets '0' '1_1' are not integers"),
        ("1\t11\t0\tLung cancer\tDisease\tD1\n", 3, "offsets 11-0: start must be before end"),
        ("1\t5\t5\tLung cancer\tDisease\tD1\n", 3, "offsets 5-5: start must be before end"),
        ("1\t-1\t11\tLung cancer\tDisease\tD1\n", 3, "offsets -1-11 outside the document text"),
        ("1\t16\t90\tADA\tDisease\tD1\n", 3, "offsets 16-90 outside the document text"),
        ("1\t0\t11\tLung tumour\tDisease\tD1\n", 3, "mention 'Lung tumour' does not match"),
        ("garbage\n", 3, "expected 'PMID|t|title'"),
        ("2\t0\t11\tLung cancer\tDisease\tD1\n", 3, "line for document '2' inside document '1'"),
    ],
)
def test_pubtator_malformed_lines(tmp_path, lines, lineno, problem):
    f = write(tmp_path / "c.txt", PUB_HEAD + lines)
    with pytest.raises(InputFormatError, match=rf"c.txt:{lineno}: {problem}"):
        read_pubtator(f)


@pytest.mark.parametrize(
    "text,lineno,problem",
    [
        ("1|t|Lung cancer.\n\n2|t|x\n2|a|y\n2\t0\t1\ty\tDisease\tD1\n", 1, "title of 1 without its abstract line"),
        ("1|t|Lung cancer.\n2|t|x\n2|a|y\n", 1, "title of 1 without its abstract line"),
        ("1|a|Lung cancer.\n", 1, "abstract of '1' without its title line"),
        ("1\t0\t4\tLung\tDisease\tD1\n", 1, "annotation line outside a document"),
        ("1|t|Lung.\n1|a|x\n\n1\t0\t4\tLung\tDisease\tD1\n", 4, "annotation line outside a document"),
    ],
)
def test_pubtator_structure_errors(tmp_path, text, lineno, problem):
    f = write(tmp_path / "c.txt", text)
    with pytest.raises(InputFormatError, match=rf"c.txt:{lineno}: {problem}"):
        read_pubtator(f)


def test_pubtator_empty_id_column_is_nil_and_counted(tmp_path):
    f = write(tmp_path / "c.txt", PUB_HEAD + "1\t0\t11\tLung cancer\tDisease\t\n1\t16\t19\tADA\tDisease\t-1\n1\tAssociation\tD1\tD2\tNovel\n")
    c = read_pubtator(f)
    assert [m.is_nil for m in c.mentions] == [True, True]
    assert c.counts["empty_ids_as_nil"] == 1 and c.counts["relation_lines"] == 1


@pytest.mark.parametrize(
    "doc,problem",
    [
        ({"id": "a"}, "non-empty 'id' and a string 'text'"),
        ({"id": " ", "text": "x"}, "non-empty 'id'"),
        ({"id": True, "text": "x"}, "non-empty 'id'"),
        ({"id": "a", "text": "x", "mentions": {"start": 0}}, "'mentions' must be a list"),
        ({"id": "a", "text": "x", "mentions": ["x"]}, "is not a JSON object"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0.0, "end": 4, "text": "Lung", "ids": ["D1"]}]}, "needs integer 'start'/'end'"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": False, "end": 4, "text": "Lung", "ids": ["D1"]}]}, "needs integer 'start'/'end'"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": "0", "end": 4, "text": "Lung", "ids": ["D1"]}]}, "needs integer 'start'/'end'"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0, "end": 4, "ids": ["D1"]}]}, "a string 'text'"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0, "end": 4, "text": "Lung", "ids": [601462]}]}, "'ids' must be a list of strings"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0, "end": 4, "text": "Lung", "ids": [""]}]}, r"empty id in 'ids' \(use \[\] for a NIL mention\)"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0, "end": 4, "text": "Lung", "ids": ["D1"], "type": 1}]}, "'type' must be a string"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0, "end": 4, "text": "Lung", "ids": ["D1"], "composite": "no"}]}, "'composite' true or false"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 4, "end": 0, "text": "Lung", "ids": ["D1"]}]}, "start must be before end"),
        ({"id": "a", "text": "Lung", "mentions": [{"start": 0, "end": 5, "text": "Lung", "ids": ["D1"]}]}, "outside the document text"),
    ],
)
def test_corpus_jsonl_malformed_lines(tmp_path, doc, problem):
    f = write(tmp_path / "c.jsonl", json.dumps(DOC) + "\n" + json.dumps(doc) + "\n")
    with pytest.raises(InputFormatError, match=rf"c.jsonl:2: .*{problem}"):
        read_corpus_jsonl(f)


def test_corpus_jsonl_duplicate_ids_are_kept_distinct(tmp_path):
    f = write(tmp_path / "c.jsonl", json.dumps(DOC) + "\n" + json.dumps({**DOC, "text": "Lung cancer!"}) + "\n")
    c = read_corpus_jsonl(f)
    assert [d.id for d in c.documents] == ["a", "a#2"] and c.counts["duplicate_doc_ids"] == 1
    assert c.texts() == {"a": "Lung cancer.", "a#2": "Lung cancer!"}  # no document's text is lost


@pytest.mark.parametrize("fmt", ["jsonl", "pubtator"])
def test_corpora_without_documents_or_mentions_are_errors(tmp_path, fmt):
    reader = read_corpus_jsonl if fmt == "jsonl" else read_pubtator
    with pytest.raises(InputFormatError, match=r"empty.txt: no documents found"):
        reader(write(tmp_path / "empty.txt", "\n\n"))
    bare = json.dumps({"id": "a", "text": "x"}) + "\n" if fmt == "jsonl" else "1|t|x\n1|a|y\n"
    with pytest.raises(InputFormatError, match=r"bare.txt: no mentions in 1 document"):
        reader(write(tmp_path / "bare.txt", bare))
    typed = json.dumps({**DOC, "mentions": [{**DOC["mentions"][0], "type": "Disease"}]}) + "\n" if fmt == "jsonl" else "1|t|Lung cancer.\n1|a|x\n1\t0\t11\tLung cancer\tDisease\tD1\n"
    with pytest.raises(InputFormatError, match=r"typed.txt: no mentions of type disease; types found: Disease \(1\)"):
        reader(write(tmp_path / "typed.txt", typed), ["disease"])


# ------------------------------------------------------------------------------------ skipped, counted
def test_gold_ids_missing_from_kb_are_counted_and_not_trained_on(toy_kb):
    from angel_trl.text.examples import ExampleConfig, build_stage1_rows
    from angel_trl.mining import trainable_mentions
    from angel_trl.text.tfidf import TfidfNameMatcher

    text = "Lung cancer and CF and ADA."
    mentions = [
        Mention("d", 0, 11, "Lung cancer", ("C1",)),
        Mention("d", 16, 18, "CF", ("C999",)),  # not in the KB
        Mention("d", 23, 26, "ADA", ()),  # NIL
    ]
    corpus = Corpus([Document("d", text, mentions)])
    table = NameTable.from_kb(toy_kb)
    rows = build_stage1_rows(corpus, toy_kb, table, TfidfNameMatcher(table), ExampleConfig(), top_k=1)
    assert rows.counts == Counter(rows_mention=1, skipped_gold_not_in_kb=1, skipped_nil=1, skipped_composite=0)
    assert "skipped_composite" in dict(rows.counts)  # zeros reach stage1_results.json too
    assert rows.targets == ["lung cancer"] and not any("[ST] cf [ET]" in s for s in rows.sources)
    counts = Counter()
    assert trainable_mentions(corpus, toy_kb, counts) == mentions[:1]
    assert counts == Counter(skipped_gold_not_in_kb=1, skipped_nil=1, skipped_composite=0)


@pytest.fixture(scope="module")
def tokenizer():
    from angel_trl.modeling import train_tokenizer

    return train_tokenizer(["lung cancer", "ada deficiency", "cystic fibrosis"] * 5, 300)


def test_overlong_sources_are_cut_and_counted(tokenizer):
    from datasets import Dataset

    from angel_trl.text.tokenization import SequenceEncoder
    from angel_trl.trainers.seq2seq_dpo_trainer import tokenize_pairs

    encoder = SequenceEncoder(tokenizer, max_source_length=12)
    ids, truncated = encoder.sources(["[ST] ada [ET]", "lung cancer " * 20 + "[ST] ada [ET]"])
    assert truncated == 1 and len(ids[1]) == 12 and ids[1][-1] == encoder.eos
    assert ids[1][-4:] == ids[0][-4:]  # "[ST] ada [ET]</s>": the mention survives a left context that fills the budget
    pairs = Dataset.from_dict({"prompt": ["[ST] ada [ET]", "lung cancer " * 20], "decoder_prompt": ["ada is"] * 2, "chosen": ["a"] * 2, "rejected": ["b"] * 2})
    tokenized, truncated = tokenize_pairs(pairs, encoder)
    assert truncated == 1 and max(len(x) for x in tokenized["input_ids"]) == 12


@pytest.mark.parametrize("left,right", [(0, 30), (30, 0), (30, 30), (2, 30), (30, 2), (5, 5)])
@pytest.mark.parametrize("limit", [6, 9, 12, 17, 40])
def test_truncation_keeps_the_mention_and_balances_context(tokenizer, left, right, limit):
    from angel_trl.text.tokenization import SequenceEncoder

    encoder = SequenceEncoder(tokenizer, max_source_length=limit)
    text = "lung " * left + "[ST] cystic fibrosis [ET]" + " cancer" * right
    full = tokenizer(text)["input_ids"]
    (out,), truncated = encoder.sources([text])
    assert truncated == (len(full) > limit) and len(out) == min(limit, len(full))
    assert out[0] == encoder.bos and out[-1] == encoder.eos
    st, et = encoder.markers
    body, kept = full[1:-1], out[1:-1]
    start, end = body.index(st), body.index(et)
    if end - start + 1 > limit - 2:  # the mention itself is cut, never its markers
        assert kept[0] == st and kept[-1] == et and kept[:-1] == body[start : start + len(kept) - 1]
        return
    lo = start - kept.index(st)
    assert kept == body[lo : lo + len(kept)]  # one contiguous window around the span
    kept_left, kept_right = start - lo, lo + len(kept) - 1 - end
    spare_left, spare_right = start - kept_left, len(body) - end - 1 - kept_right
    # Balanced: a side keeps fewer tokens than the other only when it has none left to give.
    assert abs(kept_left - kept_right) <= 1 or min(spare_left, spare_right) == 0


def test_names_are_plain_text_for_the_tokenizer(tokenizer):
    from angel_trl.text.tokenization import SequenceEncoder

    encoder = SequenceEncoder(tokenizer)
    names = ["lung cancer", "x </s> y", "[ST] ada [ET]", "<pad>"]
    seqs = encoder.names(names)
    assert seqs[0] == [*tokenizer(" lung cancer", add_special_tokens=False)["input_ids"], encoder.eos]  # ordinary names unchanged
    specials = set(tokenizer.all_special_ids)
    assert all(not specials & set(s[:-1]) for s in seqs)
    trie = NameTrie.build(seqs, encoder.eos)  # an EOS inside a name would make this raise
    assert [trie.name_of(s) for s in seqs] == [0, 1, 2, 3]


def test_names_that_tokenise_to_nothing_are_left_out_of_the_trie(caplog):
    from angel_trl.linking.linker import build_name_trie

    class Encoder:  # a tokenizer that drops every character of "\u200b"
        eos = 2

        def names(self, names):
            return [[*(ord(c) for c in n if c != "\u200b"), self.eos] for n in names]

    table = NameTable(["ab", "\u200b", "b"], [["A"], ["Z"], ["B"]], lowercase=True)
    with caplog.at_level(logging.WARNING, logger="angel_trl.linking.linker"):
        trie = build_name_trie(table, Encoder())
    assert "1 name(s) tokenise to nothing" in caplog.text
    assert trie.name_of([ord("a"), ord("b"), 2]) == 0 and trie.name_of([ord("b"), 2]) == 2  # indices of the table
    assert trie.name_of([2]) == -1 and 2 not in trie.allowed(0).tolist()  # decoding cannot stop at once
    with pytest.raises(ValueError, match="every name tokenises to nothing"):
        build_name_trie(NameTable(["\u200b"], [["Z"]], True), Encoder())


def test_trie_takes_a_name_that_is_only_eos():
    trie = NameTrie.build([[5, 2], [2]], eos_token_id=2)
    assert sorted(trie.allowed(0).tolist()) == [2, 5] and trie.name_of([2]) == 1 and trie.name_of([5, 2]) == 0


def test_counts_reach_the_run_summary_and_the_scores(trained_toy, toy_dir, toy_kb, caplog):
    from angel_trl.evaluation import link_and_score
    from angel_trl.linking.linker import EntityLinker

    out, summary = trained_toy
    saved = json.loads((out / "stage1_results.json").read_text())
    assert saved["rows"]["skipped_gold_not_in_kb"] == 0 and saved["truncated_sources"] == {"train": 0, "dev": 0}
    assert saved["kb"]["empty_names_skipped"] == 0 and saved["dev"]["truncated_sources"] == 0
    # the thread count moves a CPU run's weights, so the results say where they were trained
    assert saved["machine"]["torch_threads"] >= 1 and saved["machine"]["processes"] == 1 and saved["machine"]["device"] == "cpu"
    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    short = EntityLinker.from_pretrained(out, max_source_length=6)
    with caplog.at_level(logging.WARNING, logger="angel_trl.evaluation"):
        metrics, _ = link_and_score(short, corpus, toy_kb, what="train.jsonl")
    assert metrics["truncated_sources"] == len(corpus.mentions)
    # A score over cut sources reads like any other: the log names the corpus, the count and the setting.
    assert f"train.jsonl: {len(corpus.mentions)} of {len(corpus.mentions)} sources are longer than max_source_length=6" in caplog.text


# ------------------------------------------------------------------------------------ saved artefacts
def test_damaged_name_table_and_trie_are_input_errors(tmp_path):
    table = NameTable(["ada"], [["C2", "C3"]], lowercase=True)
    table.save(tmp_path / "names.jsonl")
    assert NameTable.load(tmp_path / "names.jsonl").concept_ids == [["C2", "C3"]]
    with pytest.raises(InputFormatError, match=r"kb.jsonl:1: not an angel-trl name table"):
        NameTable.load(write(tmp_path / "kb.jsonl", KB_LINE))
    good = (tmp_path / "names.jsonl").read_text()
    with pytest.raises(InputFormatError, match=r"bad.jsonl:3: expected"):
        NameTable.load(write(tmp_path / "bad.jsonl", good + '{"name": "x", "ids": "C1"}\n'))
    with pytest.raises(InputFormatError, match=r"cut.jsonl:2: invalid JSON"):
        NameTable.load(write(tmp_path / "cut.jsonl", good[:-8]))
    with pytest.raises(InputFormatError, match=r"noids.jsonl:3: .*with at least one non-empty id"):
        NameTable.load(write(tmp_path / "noids.jsonl", good + '{"name": "x", "ids": []}\n'))
    with pytest.raises(InputFormatError, match=r"twice.jsonl:3: name 'ada' again \(first on line 2\)"):
        NameTable.load(write(tmp_path / "twice.jsonl", good + '{"name": "ada", "ids": ["C4"]}\n'))

    trie = NameTrie.build([[5, 2]], 2)
    trie.save(tmp_path / "trie.npz")
    data = (tmp_path / "trie.npz").read_bytes()
    for name, content in [("cut.npz", data[: len(data) // 2]), ("text.npz", b"hello"), ("empty.npz", b"")]:
        with pytest.raises(InputFormatError, match=rf"{name}: not a readable angel-trl trie"):
            NameTrie.load(write(tmp_path / name, content))
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    with pytest.raises(InputFormatError, match=r"other.npz: not an angel-trl trie \(no format_version"):
        NameTrie.load(tmp_path / "other.npz")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as f:
            f.write("half a fi")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n" and no_temporary_files(tmp_path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_trie_save_failure_keeps_the_old_trie(tmp_path, monkeypatch):
    NameTrie.build([[5, 2]], 2).save(tmp_path / "trie.npz")

    def savez_then_die(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_then_die)
    with pytest.raises(KeyboardInterrupt):
        NameTrie.build([[6, 2]], 2).save(tmp_path / "trie.npz")
    monkeypatch.undo()
    assert NameTrie.load(tmp_path / "trie.npz").name_of([5, 2]) == 0 and no_temporary_files(tmp_path)


def test_atomic_save_dataset_replaces_and_never_half_writes(tmp_path):
    from datasets import Dataset, load_from_disk

    target = tmp_path / "pairs" / "train"
    atomic_save_dataset(Dataset.from_dict({"a": [1, 2]}), target)
    atomic_save_dataset(Dataset.from_dict({"a": [3]}), target)
    assert load_from_disk(str(target))["a"] == [3] and no_temporary_files(target.parent)

    class Dying:
        def save_to_disk(self, path):
            Path(path, "state.json").write_text("{")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_save_dataset(Dying(), target)
    assert load_from_disk(str(target))["a"] == [3] and no_temporary_files(target.parent)
    (tmp_path / "notes").mkdir()
    write(tmp_path / "notes" / "mine.txt", "keep me")
    with pytest.raises(FileExistsError, match="not a saved dataset"):
        atomic_save_dataset(Dataset.from_dict({"a": [1]}), tmp_path / "notes")
    assert (tmp_path / "notes" / "mine.txt").exists()


def test_a_killed_dataset_save_leaves_the_old_dataset(tmp_path):
    from datasets import Dataset, load_from_disk

    target = tmp_path / "train"
    atomic_save_dataset(Dataset.from_dict({"a": [1]}), target)
    child = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from angel_trl.data.files import atomic_save_dataset

        class Dying:
            def save_to_disk(self, path):
                Path(path, "state.json").write_text("{{")
                os.kill(os.getpid(), signal.SIGKILL)

        atomic_save_dataset(Dying(), {str(target)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True)
    assert done.returncode == -9
    assert load_from_disk(str(target))["a"] == [1]


def test_cli_mine_rejects_a_damaged_summary(tmp_path):
    from angel_trl.mining import read_mining_summaries

    assert read_mining_summaries(tmp_path) == {}
    write(tmp_path / "mining_summary.json", '{"train": ')
    with pytest.raises(InputFormatError, match=r"mining_summary.json: not a mining summary"):
        read_mining_summaries(tmp_path)


def test_artefacts_get_the_usual_permissions(toy_dir, toy_kb, tmp_path):
    """Under umask 022 every file a stage-1 run and mining write is 0644 and every directory 0755 (none
    0600 as from mkstemp): a shared cluster's other users and jobs can read them."""
    from angel_trl.data.arguments import DataArguments
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs, save_mined_pairs
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    train = str(toy_dir / "train.jsonl")
    old_umask = os.umask(0o022)
    try:
        config = Stage1Config(output_dir=str(tmp_path / "stage1"), model_size="tiny", max_steps=2, save_strategy="steps", save_steps=2, eval_strategy="no",
                              per_device_train_batch_size=4, link_num_beams=2, link_top_k=2, use_cpu=True, disable_tqdm=True, report_to="none")
        train_stage1(DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=train, test_file=train), ModelArguments(), config)
        linker = EntityLinker.from_pretrained(str(tmp_path / "stage1"))
        pairs, summary = mine_pairs(linker, read_corpus_jsonl(train), toy_kb, MiningConfig(rule="tfidf"), show_progress=False)
        save_mined_pairs(tmp_path / "pairs", {"train": pairs}, {"train": summary})
    finally:
        os.umask(old_umask)
    stage1 = tmp_path / "stage1"
    for name in ("model.safetensors", "trie.npz", "names.jsonl", "kb.jsonl", "linker_config.json", "stage1_results.json", "predictions_test.jsonl", "training_args.json"):
        assert (stage1 / name).exists(), name
    assert (tmp_path / "pairs" / "mining_summary.json").exists() and any((tmp_path / "pairs" / "train").glob("*.arrow"))
    modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o755 if (tmp_path / p).is_dir() else 0o644)}
    assert not wrong
