"""OBO ontologies read as KBs: names, scoped synonyms, alt ids, definitions; obsolete terms and
other stanzas skipped and counted; the JSONL conversion reads back the same."""

from __future__ import annotations

import pytest

from angel_trl.data.kb import load_kb, read_kb_jsonl
from angel_trl.data.obo import read_obo
from angel_trl.errors import InputFormatError

from tests.conftest import assert_input_error

OBO = r"""format-version: 1.2
ontology: toy
synonymtypedef: layperson "layperson term"

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0002279 ! an old id
def: "A \"seizure\" is an intermittent abnormality." [PMID:1]
synonym: "Seizures" EXACT []
synonym: "Epileptic seizure" RELATED layperson [HP:probinson]
synonym: "Focal seizure" NARROW []
synonym: "Neurological event" BROAD []
synonym: "Fits" []
is_a: HP:0012638 ! Abnormal nervous system physiology

[Term]
id: MESH:D003920
name: Diabetes mellitus
exact_synonym: "DM" []
broad_synonym: "Metabolic disease" []

[Term]
id: HP:0000001
name: obsolete All
is_obsolete: true
replaced_by: HP:0001250

[Term]
id: HP:0000002

[Typedef]
id: part_of
name: part of
"""


@pytest.fixture()
def obo_file(tmp_path):
    f = tmp_path / "toy.obo"
    f.write_text(OBO)
    return f


def test_obo_terms(obo_file):
    kb = read_obo(obo_file)
    assert list(kb.concepts) == ["HP:0001250", "D003920"]  # MESH: stripped as everywhere
    seizure = kb.concepts["HP:0001250"]
    assert seizure.names == ["Seizure", "Seizures", "Epileptic seizure", "Fits"]  # a scope-less synonym is RELATED
    assert seizure.definition == 'A "seizure" is an intermittent abnormality.'
    assert kb.canonical_id("HP:0002279") == "HP:0001250" and kb.canonical_id("HP:0000001") == "HP:0001250"
    assert kb.names("D003920") == ["Diabetes mellitus", "DM"]
    stats = kb.stats()
    assert stats["obsolete_terms_skipped"] == 1 and stats["obsolete_ids_as_alt_ids"] == 1
    assert stats["terms_without_name_skipped"] == 1 and stats["obo_typedef_stanzas_skipped"] == 1
    assert stats["synonyms_skipped_by_scope"] == 3


def test_obo_synonym_scopes(obo_file):
    kb = read_obo(obo_file, synonym_scopes=("exact", "NARROW", "BROAD"))
    assert kb.names("HP:0001250") == ["Seizure", "Seizures", "Focal seizure", "Neurological event"]
    assert kb.stats()["synonyms_skipped_by_scope"] == 2
    with pytest.raises(ValueError, match="synonym scopes must be among"):
        read_obo(obo_file, synonym_scopes=["CLOSE"])


def test_obo_to_jsonl_reads_back(obo_file, tmp_path):
    kb = load_kb(obo_file, "obo")
    kb.to_jsonl(tmp_path / "kb.jsonl")
    back = read_kb_jsonl(tmp_path / "kb.jsonl")
    assert {c.id: (c.names, c.alt_ids, c.definition) for c in back.concepts.values()} == {c.id: (c.names, c.alt_ids, c.definition) for c in kb.concepts.values()}


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[Term]\nname: x\n', r"toy.obo:1: a \[Term\] without an id"),
        ('[Term]\nid: A:1\nid: A:2\n', r"toy.obo:3: a second id"),
        ('[Term]\nid: A:1\nname: x\nsynonym: unquoted EXACT []\n', r"toy.obo:4: synonym: expected a quoted string"),
        ('[Term]\nid: A:1\njust words\n', r"toy.obo:3: expected 'tag: value'"),
        ('format-version: 1.2\n[Typedef]\nid: part_of\n', r"toy.obo: no concepts found"),
    ],
)
def test_obo_errors(tmp_path, text, problem):
    assert_input_error(read_obo, tmp_path / "toy.obo", text, problem)


def test_obo_bad_bytes_name_the_line(tmp_path):
    f = tmp_path / "toy.obo"
    f.write_bytes(b"[Term]\nid: A:1\nname: caf\xe9\n")
    with pytest.raises(InputFormatError, match=r"toy.obo:3: not valid UTF-8"):
        read_obo(f)


def test_obo_scopes_in_small_letters_and_replacements_not_kept(tmp_path):
    f = tmp_path / "toy.obo"
    f.write_text(
        '[Term]\nid: A:1\nname: seizure\nsynonym: "fit" broad []\nsynonym: "attack" exact []\n\n'
        "[Term]\nid: A:2\nname: old\nis_obsolete: true\nreplaced_by: A:9\n"
    )
    kb = read_obo(f)
    assert kb.names("A:1") == ["seizure", "attack"]  # "broad" is BROAD, left out by default, not RELATED
    assert kb.stats()["synonym_scopes_not_in_capitals"] == 2
    assert kb.stats()["obsolete_ids_replaced_by_a_term_not_kept"] == 1 and kb.canonical_id("A:2") is None
