"""Abbreviations defined in a document (Schwartz-Hearst) and mentions linked as their long forms."""

import json

from angel_trl.data.abbreviations import best_long_form, expand_abbreviations, find_abbreviations
from angel_trl.data.corpus import Corpus, Document, Mention
from angel_trl.data.arguments import DataArguments
from angel_trl.text.examples import ExampleConfig


def test_definitions_found_in_the_papers_pattern():
    text = ("Myocardial infarction (MI) and heparin-induced thrombocytopenia (HIT) were seen; "
            "ischemic stroke (IS)/transient ischemic attack (TIA) too, in 12 rats (20%) (p < 0.05) (see below).")
    assert find_abbreviations(text) == {
        "MI": "Myocardial infarction",
        "HIT": "heparin-induced thrombocytopenia",
        "IS": "ischemic stroke",
        "TIA": "transient ischemic attack",  # not "(IS)/transient ...": a parenthesis ends the candidate
    }


def test_first_definition_wins_and_the_first_letter_must_start_a_word():
    assert find_abbreviations("Panic disorder (PD). Later, Parkinson's disease (PD).") == {"PD": "Panic disorder"}
    # "S" of "SE" must begin a word: "epilepticus" holds an "s" inside, not at the start.
    assert best_long_form("SE", "seizures in status epilepticus") == "status epilepticus"
    assert best_long_form("XYZ", "nothing to see") is None
    assert find_abbreviations("a long form containing itself (ab ab)") == {}


def test_expanded_mention_is_linked_as_its_long_form():
    text = "Acute kidney injury (AKI) follows. AKI was mild; kidney failure too."
    doc = Document("d1", text, [Mention("d1", 21, 24, "AKI", ("D1",)), Mention("d1", 35, 38, "AKI", ("D1",)), Mention("d1", 53, 66, "kidney failure", ("D2",))])
    corpus = Corpus([doc], "mem")
    expanded = expand_abbreviations(corpus)
    assert [m.text for m in expanded.mentions] == ["Acute kidney injury", "Acute kidney injury", "kidney failure"]
    assert [(m.start, m.end) for m in expanded.mentions] == [(m.start, m.end) for m in corpus.mentions]  # ids and context unchanged
    assert expanded.counts["abbreviations_expanded"] == 2 and "abbreviations_expanded" not in corpus.counts
    assert [m.text for m in corpus.mentions][0] == "AKI"  # the input corpus is left as it was
    ex = ExampleConfig(max_context_words=2)
    assert ex.source_for(expanded.mentions[1], text) == "(aki) follows. [ST] acute kidney injury [ET] was mild;"
    assert ex.source_for(corpus.mentions[1], text) == "(aki) follows. [ST] aki [ET] was mild;"
    assert ex.prompt(expanded.mentions[1].text) == "acute kidney injury is"


def test_data_arguments_expand_every_split_when_asked(tmp_path):
    text = "Acute kidney injury (AKI) follows."
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"id": "d1", "text": text, "mentions": [{"start": 21, "end": 24, "text": "AKI", "ids": ["D1"]}]}) + "\n")
    plain = DataArguments(kb_path="kb.jsonl", train_file=str(path)).load_split("train")
    expanded = DataArguments(kb_path="kb.jsonl", train_file=str(path), expand_abbreviations=True).load_split("train")
    assert plain.mentions[0].text == "AKI"
    assert expanded.mentions[0].text == "Acute kidney injury" and expanded.stats()["abbreviations_expanded"] == 1


def test_unset_expansion_follows_the_linker_and_an_explicit_one_wins(caplog):
    data = DataArguments(kb_path="kb.jsonl")
    assert data.following_linker(True).expand_abbreviations is True
    assert data.following_linker(False).expand_abbreviations is False
    explicit = DataArguments(kb_path="kb.jsonl", expand_abbreviations=False)
    assert explicit.following_linker(True).expand_abbreviations is False and "trained with True" in caplog.text
