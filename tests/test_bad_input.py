"""Issue "no silent loss, no traceback": input classes that used to be misread without a word.

One table-driven test per class: line endings, header rows, marker and special-token strings in
text, several marked mentions, decoding settings that cannot fill a top-k list, greedy decoding,
and a KB other than the linker's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from angel_trl.data.corpus import read_corpus_jsonl, read_pubtator
from angel_trl.data.kb import read_kb_jsonl, read_medic, read_mesh
from angel_trl.errors import InputFormatError
from angel_trl.text.examples import ExampleConfig, parse_marked
from tests.cli.test_cli import assert_user_error, run

# (reader, file content with \n line ends, what it must read)
LINE_END_CASES = [
    (read_medic, "D1||lung cancer|lc\nD2||breast cancer\n", lambda kb: kb.stats()["names"] == 3 and list(kb.concepts) == ["D1", "D2"]),
    (read_mesh, "D1\tlung cancer\tlc\tC04\nD2\tbreast cancer\t\tC04\n", lambda kb: list(kb.concepts) == ["D1", "D2"]),
    (read_kb_jsonl, '{"id": "D1", "names": ["lung cancer"]}\n{"id": "D2", "names": ["breast cancer"]}\n', lambda kb: len(kb) == 2),
    (read_pubtator, "1|t|Lung cancer.\n1|a|It spreads.\n1\t0\t11\tLung cancer\tDisease\tD1\n", lambda c: [m.text for m in c.mentions] == ["Lung cancer"]),
    (read_corpus_jsonl, '{"id": "d", "text": "Lung cancer.", "mentions": [{"start": 0, "end": 11, "text": "Lung cancer", "ids": ["D1"]}]}\n', lambda c: len(c.mentions) == 1),
]


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
@pytest.mark.parametrize("reader,content,check", LINE_END_CASES, ids=lambda x: getattr(x, "__name__", ""))
def test_every_reader_reads_bare_cr_and_crlf_files_as_lf_files(tmp_path, reader, content, check, ending):
    path = tmp_path / "input.txt"
    path.write_bytes(content.replace("\n", ending).encode())
    assert check(reader(path))


def test_line_numbers_count_bare_cr_lines(tmp_path):
    path = tmp_path / "medic.txt"
    path.write_bytes(b"D1||lung cancer\rno separator\r")
    with pytest.raises(InputFormatError, match=r"medic.txt:2: expected 'ID"):
        read_medic(path)


@pytest.mark.parametrize(
    "reader,content,concepts",
    [
        (read_medic, "DiseaseID|AltDiseaseIDs||DiseaseName|Synonyms\nD1||lung cancer\n", ["D1"]),
        (read_medic, "# comment\nDiseaseID||DiseaseName\nMESH:D2||breast cancer\n", ["D2"]),
        (read_mesh, "UI\tname\tsynonyms\ttree numbers\nD1\tlung cancer\t\tC04\n", ["D1"]),
    ],
)
def test_a_header_row_is_skipped_and_counted_not_a_concept(tmp_path, reader, content, concepts):
    path = tmp_path / "kb.txt"
    path.write_text(content)
    kb = reader(path)
    assert list(kb.concepts) == concepts and kb.stats()["header_lines_skipped"] == 1


def test_mesh_supplementary_header_row_is_skipped(tmp_path):
    desc, supp = tmp_path / "d.tsv", tmp_path / "s.tsv"
    desc.write_text("D1\tlung cancer\t\tC04\n")
    supp.write_text("UI\tname\tsynonyms\tmapped\nC1\tbevonium\t\tD1\n")
    kb = read_mesh(desc, supp)
    assert list(kb.concepts) == ["D1", "C1"] and kb.stats()["header_lines_skipped"] == 1


def test_only_the_first_record_can_be_a_header(tmp_path):
    path = tmp_path / "mesh.tsv"
    path.write_text("D1\tlung cancer\t\tC04\nUI\tname\t\tC04\n")
    assert list(read_mesh(path).concepts) == ["D1", "UI"]  # data, however odd, is never dropped


def test_pubtator_abstract_before_any_title_is_an_input_error(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("|a|text\n")
    with pytest.raises(InputFormatError, match=r"c.txt:1: abstract of '' without its title line"):
        read_pubtator(path)


# ------------------------------------------------------------------ control strings in text
@pytest.fixture(scope="module")
def tokenizer(trained_toy):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(trained_toy[0])


@pytest.mark.parametrize(
    "text,mention",
    [
        ("Tremor [ET] and lung cancer [ST] were seen.", "lung cancer"),
        ("A </s> b <s> c <pad> lung cancer <mask> d <unk>.", "lung cancer"),
        ("x </s> y", "x </s> y"),
        ("[ST] [ET]lung cancer[ST]", "lung cancer"),
    ],
)
def test_document_text_is_plain_text_only_the_two_markers_are_special(tokenizer, text, mention):
    from angel_trl.text.tokenization import SequenceEncoder

    enc = SequenceEncoder(tokenizer)
    start = text.index(mention)
    source = ExampleConfig(lowercase=False).source(text, start, start + len(mention))
    (ids,), _ = enc.sources([source])
    special = [t for t in ids if t in set(tokenizer.all_special_ids)]
    assert special == [enc.bos, *enc.markers, enc.eos]
    (prompt,) = enc.prompts([ExampleConfig().prompt(mention)])
    assert enc.eos not in prompt


def test_plain_text_sources_tokenise_as_before(tokenizer, toy_dir):
    """For text without control strings the ids are the tokenizer's own for the whole string: models
    trained before keep their inputs."""
    from angel_trl.text.tokenization import SequenceEncoder

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    ex = ExampleConfig()
    sources = [ex.source_for(m, corpus.texts()[m.doc_id]) for m in corpus.mentions] + ["no markers at all"]
    ids, _ = SequenceEncoder(tokenizer, max_source_length=10_000).sources(sources)
    assert ids == tokenizer(sources, add_special_tokens=True)["input_ids"]


def test_marker_strings_in_a_corpus_are_counted_and_kept_out_of_the_markers(tmp_path):
    text = "Essential tremor [ET] and lung cancer."
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "d", "text": text, "mentions": [{"start": 26, "end": 37, "text": "lung cancer", "ids": ["D1"]}]}) + "\n")
    corpus = read_corpus_jsonl(path)
    assert corpus.stats()["texts_with_marker_strings"] == 1
    source = ExampleConfig(lowercase=False).source_for(corpus.mentions[0], text)
    assert source == "Essential tremor (ET) and [ST] lung cancer [ET] ."


@pytest.mark.parametrize(
    "text,problem",
    [
        ("no markers", "no '[ST] mention [ET]' span"),
        ("[ST] a [ST] b [ET]", "opens a span inside another span"),
        ("a [ET] b", "closes no span"),
        ("[ST] a", "without its [ET]"),
        ("[ST]  [ET] x", "empty mention"),
    ],
)
def test_badly_marked_texts_say_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_marked(text)


def test_every_marked_mention_of_a_text_is_read_with_its_offsets():
    plain, spans = parse_marked("[ST] ADA [ET] guidelines for [ST]  type 2 diabetes [ET].")
    assert plain == "ADA guidelines for type 2 diabetes."
    assert [plain[s:e] for s, e in spans] == ["ADA", "type 2 diabetes"]


def test_one_link_input_refuses_two_marked_mentions():
    from angel_trl.linking.linker import LinkInput

    with pytest.raises(ValueError, match="2 marked mentions"):
        LinkInput.from_marked("[ST] a [ET] and [ST] b [ET]", ExampleConfig())
    both = LinkInput.all_from_marked("[ST] a [ET] and [ST] b [ET]", ExampleConfig())
    assert [(i.source, i.mention) for i in both] == [("[ST] a [ET] and b", "a"), ("a and [ST] b [ET]", "b")]


def test_cli_links_every_marked_mention_of_a_line(capsys, trained_toy):
    rc, out, err = run(capsys, "link", trained_toy[0], "--text", "[ST] lung cancer [ET] and [ST] CF [ET] in one child.", "--top-k", "1")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0, err
    assert [(r["mention"], r["start"], r["end"]) for r in rows] == [("lung cancer", 0, 11), ("CF", 16, 18)]


# ------------------------------------------------------------------ decoding settings
@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("angel_trl.linking.linker", fromlist=["LinkerConfig"]).LinkerConfig(num_beams=2, top_k=5),
        lambda: __import__("angel_trl.mining", fromlist=["MiningConfig"]).MiningConfig(num_beams=2, top_k=5),
        lambda: __import__("angel_trl.trainers", fromlist=["Stage1Config"]).Stage1Config(output_dir="x", link_num_beams=2, link_top_k=5, use_cpu=True),
        lambda: __import__("angel_trl.linking.linker", fromlist=["LinkerConfig"]).LinkerConfig(num_beams=0, top_k=0),
    ],
)
def test_fewer_beams_than_top_k_is_refused_where_it_is_set(make):
    with pytest.raises(ValueError, match=r"more than .*num_beams|must be a positive integer"):
        make()


def test_cli_refuses_fewer_beams_than_top_k_before_loading(capsys, trained_toy):
    rc, err = run(capsys, "link", trained_toy[0], "--text", "[ST] CF [ET]", "--num-beams", "2", "--top-k", "5")[::2]
    assert_user_error(rc, err, "top_k (5) is more than num_beams (2)")


def test_one_beam_is_greedy_decoding_with_exact_scores(trained_toy):
    """num_beams=1 used to crash (greedy search returns no sequence scores): its score is now the
    name's log-probability, the same as beam search and the hybrid scorer give it."""
    from angel_trl.hybrid.scoring import name_log_probs
    from angel_trl.linking.linker import EntityLinker

    greedy = EntityLinker.from_pretrained(trained_toy[0], num_beams=1, top_k=1)
    texts = ["Patients with [ST] lung cancer [ET] were treated with surgery.", "A sweat test confirmed [ST] CF [ET] in the infant."]
    results = greedy.link(texts)
    ex = greedy.config.example_config
    items = [__import__("angel_trl.linking.linker", fromlist=["LinkInput"]).LinkInput.from_marked(t, ex) for t in texts]
    exact = name_log_probs(greedy.model, greedy.encoder, [i.source for i in items], [ex.prompt(i.mention) for i in items], [[r.candidates[0].name] for r in results])
    for r, (score,) in zip(results, exact):
        assert len(r.candidates) == 1 and r.candidates[0].score == pytest.approx(score, abs=1e-4)


# ------------------------------------------------------------------ a KB other than the linker's
def test_evaluate_with_another_kb_links_over_that_kb(capsys, trained_toy, toy_dir, tmp_path):
    kb = [json.loads(line) for line in (toy_dir / "kb.jsonl").read_text().splitlines()]
    smaller = tmp_path / "kb.jsonl"
    smaller.write_text("".join(json.dumps(c) + "\n" for c in kb if c["id"] != "C1"))
    preds = tmp_path / "p.jsonl"
    rc, out, err = run(capsys, "evaluate", trained_toy[0], "--corpus", toy_dir / "train.jsonl", "--kb", smaller, "--predictions", preds)
    assert rc == 0, err
    assert "its name trie is rebuilt" in err
    predicted = {p["id"] for line in preds.read_text().splitlines() for p in json.loads(line)["predictions"]}
    assert "C1" not in predicted and predicted


def test_evaluate_reports_what_the_corpus_reader_repaired(capsys, trained_toy, toy_dir, tmp_path):
    docs = (toy_dir / "train.jsonl").read_text().splitlines()
    corpus = tmp_path / "dup.jsonl"
    corpus.write_text("\n".join(docs + docs[:1]) + "\n")  # one document id twice
    rc, out, err = run(capsys, "evaluate", trained_toy[0], "--corpus", corpus)
    assert rc == 0, err
    assert json.loads(out)["input_counts"] == {"corpus": {"duplicate_doc_ids": 1}}
    assert "duplicate_doc_ids 1" in err


# ------------------------------------------------------------------ names equal up to the token limit
def test_names_equal_up_to_the_token_limit_are_counted_everywhere(capsys, trained_toy, tmp_path):
    """Two concepts whose names differ only after 64 tokens share one trie path: both stay reachable,
    and build-trie and kb-stats say how many names were cut and how many share a path."""
    long = " ".join(["lung"] * 70)
    kb = tmp_path / "kb.jsonl"
    kb.write_text(json.dumps({"id": "A", "names": [long + " alpha"]}) + "\n" + json.dumps({"id": "B", "names": [long + " beta", "cf"]}) + "\n")
    rc, out, err = run(capsys, "kb-stats", "--kb", kb, "--tokenizer", trained_toy[0], "--format", "json")
    assert rc == 0, err
    stats = json.loads(out)
    assert stats["names_truncated"] == 2 and stats["trie_collisions"] == 1
    rc, out, err = run(capsys, "build-trie", "--kb", kb, "--tokenizer", trained_toy[0], "--output", tmp_path / "trie")
    assert rc == 0 and "1 name(s) share another name's token path" in out and "2 name(s) cut to 64 tokens" in out
