import json

import pytest

from angel_trl.data.corpus import read_corpus_jsonl, read_pubtator
from angel_trl.errors import InputFormatError

from tests.conftest import assert_input_error, require_shared_data

PUBTATOR = """1|t|Lung cancer and ADA.
1|a|Breast or ovarian cancer is common. ADA.
1\t0\t11\tLung cancer\tDisease\tMESH:D1
1\t16\t19\tADA\tDisease\t OMIM:123
1\t21\t45\tBreast or ovarian cancer\tCompositeMention\tD2|D3
1\t57\t60\tADA\tDisease\t-1
1\tCID\tD5\tD1

1|t|Lung cancer again.
1|a|x
1\t0\t11\tLung cancer\tDisease\tD1+D4\tlung|cancer
"""


def test_pubtator_quirks(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text(PUBTATOR)
    c = read_pubtator(f)
    assert [d.id for d in c.documents] == ["1", "1#2"]  # duplicated PMID kept, made distinct
    ms = c.mentions
    assert ms[0].ids == ("D1",) and ms[1].ids == ("123",)
    assert ms[2].composite and ms[2].ids == ("D2", "D3")
    assert ms[3].is_nil
    assert ms[4].composite and ms[4].ids == ("D1", "D4")
    assert c.stats()["relation_lines"] == 1 and c.stats()["duplicate_doc_ids"] == 1


def test_pubtator_columns_past_the_seventh_are_counted(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("1|t|Lung cancer.\n1|a|x\n1\t0\t11\tLung cancer\tDisease\tD1\tlung cancer\tnote\n1\t0\t4\tLung\tDisease\tD9\t\t\n")
    c = read_pubtator(f)
    assert [m.ids for m in c.mentions] == [("D1",), ("D9",)] and c.stats()["extra_columns_ignored"] == 1  # empty ones hold nothing


def test_pubtator_offset_mismatch_names_line(tmp_path):
    assert_input_error(read_pubtator, tmp_path / "c.txt", "1|t|Lung cancer.\n1|a|x\n1\t0\t4\tLung cancer\tDisease\tD1\n", r"c.txt:3: mention 'Lung cancer' does not match")


def test_pubtator_offsets_outside_text(tmp_path):
    assert_input_error(read_pubtator, tmp_path / "c.txt", "1|t|Lung.\n1|a|x\n1\t0\t400\tLung\tDisease\tD1\n", r"c.txt:3: offsets 0-400 outside")


def test_trailing_spaces_in_mention_column_are_counted_not_fatal(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text('1|t|seizures " plus " here\n1|a|x\n1\t0\t17\tseizures " plus "  \tDisease\tD1\n')
    c = read_pubtator(f)
    assert c.mentions[0].text == 'seizures " plus "'
    assert c.counts["mention_whitespace_fixed"] == 1


def test_jsonl_corpus_and_bad_offsets(tmp_path):
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"id": "a", "text": "Lung cancer.", "mentions": [{"start": 0, "end": 11, "text": "Lung cancer", "ids": ["MESH:D1"]}]}\n')
    assert read_corpus_jsonl(ok).mentions[0].ids == ("D1",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "Lung cancer.", "mentions": [{"start": 1, "end": 11, "text": "Lung cancer", "ids": ["D1"]}]}\n')
    with pytest.raises(InputFormatError, match=r"bad.jsonl:1: mention"):
        read_corpus_jsonl(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputFormatError, match="no documents"):
        read_corpus_jsonl(empty)


def test_entity_type_filter_counts_the_rest(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("1|t|Lung cancer and aspirin.\n1|a|x\n1\t0\t11\tLung cancer\tDisease\tD1\n1\t16\t23\taspirin\tChemical\tD2\n")
    c = read_pubtator(f, ["Chemical"])
    assert [m.text for m in c.mentions] == ["aspirin"] and c.counts["other_type_mentions"] == 1


@pytest.mark.integration
def test_real_corpora_counts():
    d = require_shared_data()
    ncbi = {s: read_pubtator(d / f"ncbi-disease/NCBI{s}_corpus.txt") for s in ("trainset", "developset", "testset")}
    assert [len(c.mentions) for c in ncbi.values()] == [5145, 787, 960]
    assert [len(c.documents) for c in ncbi.values()] == [593, 100, 100]
    assert ncbi["trainset"].counts["mention_whitespace_fixed"] == 1  # PMID 10923035
    assert ncbi["trainset"].counts["duplicate_doc_ids"] == 1  # PMID 8528200
    test_d = read_pubtator(d / "bc5cdr/CDR_TestSet.PubTator.txt", ["Disease"])
    test_c = read_pubtator(d / "bc5cdr/CDR_TestSet.PubTator.txt", ["Chemical"])
    assert (len(test_d.mentions), len(test_c.mentions)) == (4424, 5385)
    assert (test_d.stats()["nil"], test_c.stats()["nil"]) == (61, 30)


def test_pubtator_annotation_without_offsets_is_an_error_not_a_relation(tmp_path):
    head = "1|t|Lung cancer and pneumonitis.\n1|a|x\n1\t0\t11\tLung cancer\tDisease\tD1\n"
    # its offsets lost, the line has the 4 columns of a relation line: its type gives it away
    assert_input_error(read_pubtator, tmp_path / "c.txt", head + "1\tpneumonitis\tDisease\tD2\n", r"c.txt:4: annotation line without its start and end offsets")
    assert_input_error(read_pubtator, tmp_path / "c.txt", head + "1\t16 27\tpneumonitis\tDisease\tD2\n", r"c.txt:4: annotation line without its start and end offsets")
    # relation lines, CID or another relation name (BioRED: a novelty column), are counted as before
    f = tmp_path / "rel.txt"
    f.write_text(head + "1\tCID\tD5\tD1\n1\tAssociation\tD1\tD2\tNovel\n")
    assert read_pubtator(f).counts["relation_lines"] == 2


def test_jsonl_corpus_keys_the_format_has_no_place_for(tmp_path):
    doc = {"id": "a", "text": "Lung cancer.", "mentions": [{"start": 0, "end": 11, "text": "Lung cancer", "ids": ["D1"]}]}

    def write(path, row):
        path.write_text(json.dumps(row) + "\n")
        return path

    # a known key misspelt would lose its value: the mention would be NIL, the document empty
    typo = {**doc, "mentions": [{"start": 0, "end": 11, "text": "Lung cancer", "id": ["D1"]}]}
    assert_input_error(read_corpus_jsonl, tmp_path / "t.jsonl", json.dumps(typo) + "\n", r"t.jsonl:1: mention key 'id' is not one of .*did you mean 'ids'\?")
    upper = {"id": "a", "text": "Lung cancer.", "Mentions": doc["mentions"]}
    assert_input_error(read_corpus_jsonl, tmp_path / "t.jsonl", json.dumps(upper) + "\n", r"t.jsonl:1: document key 'Mentions' .*did you mean 'mentions'\?")
    # other extra data is ignored and counted
    extra = {**doc, "pmid": "123", "mentions": [{**doc["mentions"][0], "note": "x"}, {**doc["mentions"][0], "note": "y"}]}
    c = read_corpus_jsonl(write(tmp_path / "extra.jsonl", extra))
    assert [m.ids for m in c.mentions] == [("D1",), ("D1",)]  # both copies kept
    assert (c.counts["ignored_document_keys"], c.counts["ignored_mention_keys"], c.counts["duplicate_mentions"]) == (1, 2, 1)
    assert "duplicate_mentions" not in read_corpus_jsonl(write(tmp_path / "ok.jsonl", doc)).counts


def test_mentions_a_split_shares_with_training_are_counted():
    from angel_trl.data.corpus import Corpus, Document, Mention, mentions_shared_with

    train = Corpus([Document("t1", "Lung cancer and CF.", [Mention("t1", 0, 11, "Lung cancer", ("C1",)), Mention("t1", 16, 18, "CF", ("C5",))])])
    test = Corpus([Document("x9", "Lung cancer and CF.", [Mention("x9", 0, 11, "Lung cancer", ("C1",))]),  # the same document under another id
                   Document("x2", "Lung cancer here.", [Mention("x2", 0, 11, "Lung cancer", ("C1",))])])  # the same text, another document
    assert mentions_shared_with(test, train) == 1 and mentions_shared_with(train, train) == 2
