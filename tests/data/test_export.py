"""Predictions written as PubTator and BigBIO JSONL read back with our readers: gold ids exported as
"predictions" give the same documents and mentions."""

from __future__ import annotations

import json

import pytest

from angel_trl.data.bigbio import read_bigbio
from angel_trl.data.corpus import Corpus, Document, Mention, read_pubtator
from angel_trl.data.export import write_bigbio_predictions, write_pubtator_predictions

from tests.data.test_bigbio import PUBTATOR


@pytest.fixture()
def corpus(tmp_path):
    f = tmp_path / "gold.txt"
    f.write_text(PUBTATOR)
    return read_pubtator(f)


def _same(a: Corpus, b: Corpus) -> None:
    assert [(d.id, d.text) for d in a.documents] == [(d.id, d.text) for d in b.documents]
    assert a.mentions == b.mentions


def test_pubtator_round_trip_of_gold_ids(corpus, tmp_path):
    out = tmp_path / "pred.txt"
    counts = write_pubtator_predictions(out, corpus, [list(m.ids) for m in corpus.mentions], top_k=None)
    assert not counts
    _same(read_pubtator(out), corpus)
    assert "1\t57\t60\tADA\tDisease\t-1" in out.read_text().splitlines()  # NIL


def test_pubtator_top1_prediction(corpus, tmp_path):
    out = tmp_path / "pred.txt"
    ranked = [[*m.ids, "C9"] if m.ids else ["C9", "C8"] for m in corpus.mentions]
    write_pubtator_predictions(out, corpus, ranked)
    back = read_pubtator(out)
    assert [m.ids for m in back.mentions] == [tuple(r[:1]) for r in ranked]
    assert [(m.start, m.end, m.text, m.type) for m in back.mentions] == [(m.start, m.end, m.text, m.type) for m in corpus.mentions]


def test_bigbio_round_trip_of_gold_ids(corpus, tmp_path):
    out = tmp_path / "pred.jsonl"
    write_bigbio_predictions(out, corpus, [list(m.ids) for m in corpus.mentions], top_k=None, db_name="MESH")
    _same(read_bigbio(str(out)), corpus)
    first = json.loads(out.read_text().splitlines()[0])
    assert first["entities"][2]["normalized"] == [{"db_name": "MESH", "db_id": "D2"}, {"db_name": "MESH", "db_id": "D3"}]
    assert [p["type"] for p in first["passages"]] == ["title", "abstract"]


def test_line_breaks_in_text_are_written_as_spaces(tmp_path):
    text = "Lung cancer\tin\nsmokers"
    doc = Document("d1", text, [Mention("d1", 15, 22, "smokers", ("C1",), "Group")])
    counts = write_pubtator_predictions(tmp_path / "p.txt", Corpus([doc]), [["C2"]])
    assert counts["line_breaking_characters_written_as_spaces"] == 2
    back = read_pubtator(tmp_path / "p.txt")
    assert back.documents[0].text == "Lung cancer in smokers" and back.mentions[0].ids == ("C2",)
    assert (back.mentions[0].start, back.mentions[0].end, back.mentions[0].text) == (15, 22, "smokers")


def test_a_mention_type_with_a_tab_is_written_as_one_column(tmp_path):
    doc = Document("d1", "Lung cancer here", [Mention("d1", 0, 11, "Lung cancer", ("C1",), "Dis\tease")])
    counts = write_pubtator_predictions(tmp_path / "p.txt", Corpus([doc]), [["C2"]])
    assert counts["line_breaking_characters_written_as_spaces"] == 1
    (back,) = read_pubtator(tmp_path / "p.txt").mentions
    assert (back.type, back.ids) == ("Dis ease", ("C2",))


def test_bad_predictions_are_refused(corpus, tmp_path):
    with pytest.raises(ValueError, match="5 predictions for 7 mentions"):
        write_pubtator_predictions(tmp_path / "p.txt", corpus, [["D1"]] * 5)
    with pytest.raises(ValueError, match="expected a list of non-empty id strings"):
        write_bigbio_predictions(tmp_path / "p.jsonl", corpus, ["D1"] * 7)
    with pytest.raises(ValueError, match="cannot be written as a PubTator PMID"):
        write_pubtator_predictions(tmp_path / "p.txt", Corpus([Document("a|b", "x y", [Mention("a|b", 0, 1, "x", ())])]), [[]])
    with pytest.raises(ValueError, match=r"id 'D1\|D2' cannot be written in a PubTator id column"):
        write_pubtator_predictions(tmp_path / "p.txt", corpus, [["D1|D2"]] * 7)
    assert not (tmp_path / "p.txt").exists() and not (tmp_path / "p.jsonl").exists()
