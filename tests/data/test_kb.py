import json

import pytest

from angel_trl.errors import InputFormatError
from angel_trl.data.kb import normalize_concept_id, read_kb_jsonl, read_medic, read_mesh

from tests.conftest import assert_input_error, require_shared_data


def test_normalize_concept_id_strips_prefixes_and_spaces():
    assert normalize_concept_id(" D012345") == "D012345"
    assert normalize_concept_id("MESH:D012345") == "D012345"
    assert normalize_concept_id("OMIM:601462") == "601462"


def test_medic_alt_ids_and_shared_names(tmp_path):
    f = tmp_path / "medic.txt"
    f.write_text("270400|D019082||Smith-Lemli-Opitz Syndrome|SLOS\nD000001||Adenosine Deaminase Deficiency|ADA\nD000002||American Diabetes Association|ada\n")
    kb = read_medic(f)
    assert len(kb) == 3
    assert kb.canonical_id("MESH:D019082") == "270400"  # alternative id maps to the concept
    assert kb.canonical_id("OMIM:270400") == "270400"
    assert kb.canonical_id("D999999") is None
    assert kb.ids_for_name("ADA") == ["D000001", "D000002"]  # a shared name keeps every concept
    assert kb.stats()["ambiguous_names"] == 1


def test_medic_names_are_xml_unescaped_as_texts_write_them(tmp_path):
    f = tmp_path / "medic.txt"
    f.write_text("D010300||Parkinson&apos;s Disease|M&#233;ni&#232;re Disease|Parkinsons Disease\nD1||Cancer &amp; Tumors\n")
    kb = read_medic(f)
    assert kb.ids_for_name("Parkinson's Disease") == ["D010300"] and kb.ids_for_name("Ménière Disease") == ["D010300"]
    assert kb.ids_for_name("Cancer & Tumors") == ["D1"]
    assert kb.stats()["html_entities_unescaped"] == 4


def test_medic_malformed_line_names_file_and_line(tmp_path):
    assert_input_error(read_medic, tmp_path / "medic.txt", "D1||name\nno separator here\n", r"medic.txt:2: expected")


def test_empty_kb_file_is_an_error(tmp_path):
    assert_input_error(read_kb_jsonl, tmp_path / "empty.jsonl", "", "no concepts")


@pytest.mark.parametrize(
    "line,problem",
    [("{not json", "invalid JSON"), ('{"names": ["a"]}', "non-empty string 'id'"), ('{"id": "X", "names": ["  "]}', "no non-empty name"), ('{"id": "X", "names": "a"}', "list of strings")],
)
def test_jsonl_kb_errors(tmp_path, line, problem):
    f = tmp_path / "kb.jsonl"
    f.write_text('{"id": "A", "names": ["a"]}\n' + line + "\n")
    with pytest.raises(InputFormatError, match=rf"kb.jsonl:2: .*{problem}"):
        read_kb_jsonl(f)


def test_kb_jsonl_round_trip(tmp_path, toy_kb):
    toy_kb.to_jsonl(tmp_path / "out.jsonl")
    again = read_kb_jsonl(tmp_path / "out.jsonl")
    assert {c.id: c.names for c in again.concepts.values()} == {c.id: c.names for c in toy_kb.concepts.values()}
    assert again.canonical_id("OMIM:222100") == "C6"


def test_mesh_tree_filter(tmp_path):
    desc = tmp_path / "desc.tsv"
    desc.write_text("D1\tAspirin\tAcetylsalicylic Acid\tD02.1|D03.2\t\nD2\tAbattoirs\tSlaughterhouse\tJ01.5\t\n")
    supp = tmp_path / "supp.tsv"
    supp.write_text("C1\tbevonium\tbevonium benzilate\tD000001\n")
    kb = read_mesh(desc, supp, ["D"])
    assert sorted(kb.concepts) == ["C1", "D1"]
    assert kb.names("D1") == ["Aspirin", "Acetylsalicylic Acid"]


@pytest.mark.integration
def test_real_medic_and_mesh_counts():
    d = require_shared_data()
    medic = read_medic(d / "kb/medic/medic_06Jul2012.txt")
    stats = medic.stats()
    assert (stats["concepts"], stats["names"], stats["ambiguous_names"]) == (11915, 76237, 958)
    assert medic.canonical_id("D019082") == "270400"
    mesh = read_mesh(d / "kb/mesh2024/mesh_id_label_mappings.tsv", d / "kb/mesh2024/mesh_supp_id_label_mappings.tsv", ["D"])
    assert (len(mesh), mesh.num_names) == (333845, 675679)


def test_alt_ids_that_cannot_be_kept_are_counted(tmp_path):
    f = tmp_path / "kb.jsonl"
    rows = [
        {"id": "A", "names": ["a"], "alt_ids": ["X", "B", "A", "MESH:"]},  # B: another concept's primary id (listed later); A: its own; "MESH:" is empty
        {"id": "B", "names": ["b"], "alt_ids": ["X", "C"]},  # X: A's already; C: a primary id listed later
        {"id": "C", "names": ["c"], "alt_ids": ["A"]},  # A: another concept's primary id, listed earlier
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kb = read_kb_jsonl(f)
    assert [kb.canonical_id(i) for i in ("X", "B", "C", "A")] == ["A", "B", "C", "A"]  # first claim and primary ids win, as before
    stats = kb.stats()
    assert stats["alt_ids_shared_kept_for_the_first"] == 1 and stats["alt_ids_that_are_other_concepts_ids"] == 3 and stats["empty_ids_skipped"] == 1


def test_a_key_twice_in_one_json_object_is_an_error(tmp_path):
    from angel_trl.data.files import read_json_object

    line = '{"id": "D1", "names": ["a"], "names": ["b"]}\n'
    assert_input_error(read_kb_jsonl, tmp_path / "kb.jsonl", line, r"kb.jsonl:1: key 'names' twice in one object")
    (tmp_path / "c.json").write_text('{"a": {"b": 1, "b": 2}}')
    with pytest.raises(InputFormatError, match=r"c.json: key 'b' twice in one object"):
        read_json_object(tmp_path / "c.json")


def test_names_are_compared_in_one_unicode_form(tmp_path):
    from angel_trl.data.kb import normalize_name
    from angel_trl.data.names import NameTable

    decomposed, composed = "cafe\u0301 syndrome", "caf\u00e9 syndrome"
    assert normalize_name(decomposed) == normalize_name(composed) == composed
    assert normalize_name("\uff46\uff45\uff56\uff45\uff52") != "fever"  # fullwidth letters are kept: NFKC would also rewrite "²"
    f = tmp_path / "kb.jsonl"
    f.write_text(json.dumps({"id": "N1", "names": [decomposed]}) + "\n")
    table = NameTable.from_kb(read_kb_jsonl(f), lowercase=True)
    assert table.index_of("Caf\u00e9 Syndrome") is not None  # the exact match a composed mention used to miss


def test_jsonl_kb_keys_read_as_a_datasets_kb_reads_them(tmp_path):
    from angel_trl.data.kb import read_kb_jsonl

    f = tmp_path / "kb.jsonl"
    f.write_text('{"id": "X:1", "name": "a", "synonyms": ["b", "c"], "semantic_type": "T047"}\n')
    kb = read_kb_jsonl(f)
    assert kb.concepts["X:1"].names == ["a", "b", "c"] and kb.stats()["ignored_concept_keys"] == 1
    f.write_text('{"id": "X:1", "names": ["a"]}\n{"id": "X:2", "names": ["b"], "alt_id": ["Y:1"]}\n')
    with pytest.raises(InputFormatError, match=r"kb.jsonl:2: concept X:2: concept key 'alt_id' is not one of .*did you mean 'alt_ids'\?"):
        read_kb_jsonl(f)
    f.write_text('{"id": "X:1", "names": ["a"], "synonyms": ["b"]}\n')
    with pytest.raises(InputFormatError, match=r"kb.jsonl:1: concept X:1: has 'names' and 'name' / 'synonyms'"):
        read_kb_jsonl(f)


def test_a_name_of_invisible_characters_only_is_empty(tmp_path):
    f = tmp_path / "kb.jsonl"
    f.write_text(json.dumps({"id": "X:1", "names": ["\u200b", "a\u200bb", "\ufeff \u200d"]}) + "\n")
    kb = read_kb_jsonl(f)
    assert kb.concepts["X:1"].names == ["a\u200bb"] and kb.stats()["empty_names_skipped"] == 2
    f.write_text(json.dumps({"id": "X:1", "names": ["\u200b"]}) + "\n")
    with pytest.raises(InputFormatError, match="no non-empty name"):
        read_kb_jsonl(f)


def test_medic_entities_unescaped_counted_kept_or_refused(tmp_path):
    f = tmp_path / "medic.txt"
    f.write_text("MESH:D1||Parkinson&apos;s Disease|A &bogus; name|Caf&#233;\n")
    kb = read_medic(f)
    assert kb.concepts[kb.canonical_id("MESH:D1")].names == ["Parkinson's Disease", "A &bogus; name", "Café"]
    assert kb.stats()["html_entities_unescaped"] == 2 and kb.stats()["unknown_html_entities_kept"] == 1
    f.write_text("MESH:D1||Name\nMESH:D2||Bad &#xD800; name\n")
    with pytest.raises(InputFormatError, match=r"medic.txt:2: &#xD800; names no character"):
        read_medic(f)
