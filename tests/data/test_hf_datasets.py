"""KBs from `datasets` tables (kb_format: hf): `names` or `name` + `synonyms`, alt ids, definitions,
from a saved dataset, a parquet file or a JSONL file; bad rows named."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from angel_trl.data.hf_datasets import read_kb_dataset
from angel_trl.data.kb import load_kb
from angel_trl.errors import InputFormatError

NAMES_ROWS = [
    {"id": "MESH:D003920", "names": ["Diabetes Mellitus", "DM", " "], "alt_ids": ["OMIM:222100"], "definition": "A metabolic disease."},
    {"id": "D001", "names": ["Lung cancer"], "alt_ids": [], "definition": None},
]
NAME_SYNONYM_ROWS = [
    {"id": "HP:0001250", "name": "Seizure", "synonyms": ["Seizures", "Seizure"]},
    {"id": "HP:0000002", "name": "Abnormality of body height", "synonyms": None},
]


def test_hf_kb_from_saved_parquet_and_jsonl(tmp_path):
    ds = Dataset.from_list(NAMES_ROWS)
    ds.save_to_disk(str(tmp_path / "saved"))
    ds.to_parquet(str(tmp_path / "kb.parquet"))
    (tmp_path / "kb.jsonl").write_text("".join(json.dumps(r) + "\n" for r in NAMES_ROWS))
    for source in (tmp_path / "saved", tmp_path / "kb.parquet", tmp_path / "kb.jsonl"):
        kb = load_kb(source, "hf")
        assert kb.names("D003920") == ["Diabetes Mellitus", "DM"] and kb.canonical_id("OMIM:222100") == "D003920"
        assert kb.concepts["D003920"].definition == "A metabolic disease." and kb.concepts["D001"].definition is None
        assert kb.stats()["empty_names_skipped"] == 1


def test_hf_kb_name_and_synonyms(tmp_path):
    Dataset.from_list(NAME_SYNONYM_ROWS).save_to_disk(str(tmp_path / "saved"))
    kb = read_kb_dataset(str(tmp_path / "saved"))
    assert kb.names("HP:0001250") == ["Seizure", "Seizures"] and kb.names("HP:0000002") == ["Abnormality of body height"]


@pytest.mark.parametrize(
    "row, problem",
    [
        ({"names": ["x"]}, r"kb.jsonl:2: row 1: needs a non-empty string 'id'"),
        ({"id": "A1"}, r"row 1 \(A1\): needs 'names' \(a list of strings\) or a string 'name'"),
        ({"id": "A1", "names": "x"}, r"row 1: 'names' must be a list of strings"),
        ({"id": "A1", "names": [" "]}, r"row 1 \(A1\): no non-empty name"),
        ({"id": "A1", "names": ["x"], "alt_ids": [1]}, r"row 1: 'alt_ids' must be a list of strings"),
        ({"id": "A1", "names": ["x"], "definition": 3}, r"row 1 \(A1\): 'definition' must be a string"),
    ],
)
def test_hf_kb_bad_rows(tmp_path, row, problem):
    f = tmp_path / "kb.jsonl"
    # A good row first: the error names the bad one by its index.
    f.write_text(json.dumps({"id": "A0", "names": ["y"]}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InputFormatError, match=problem):
        read_kb_dataset(str(f))


def test_hf_local_files_are_read_by_our_readers_first(tmp_path):
    def bad(name: str, content: bytes, match: str) -> None:
        f = tmp_path / name
        f.write_bytes(content)
        with pytest.raises(InputFormatError, match=match):
            read_kb_dataset(str(f))

    good = json.dumps({"id": "A0", "names": ["y"]}).encode() + b"\n"
    bad("empty.jsonl", b"\n\n", r"empty.jsonl: no rows \(empty file\?\)")
    bad("array.jsonl", good + b'["A1", "x"]\n', r"array.jsonl:2: expected a JSON object")
    bad("cut.jsonl", good + b'{"id": "A1", "na\n', r"cut.jsonl:2: invalid JSON")
    bad("latin1.jsonl", good + '{"id": "A1", "names": ["caf\u00e9"]}\n'.encode("latin-1"), r"latin1.jsonl:2: not valid UTF-8")
    bad("latin1.csv", b"id,name\nA0,y\n" + "A1,caf\u00e9\n".encode("latin-1"), r"latin1.csv:3: not valid UTF-8")
    # a blank line above the bad row: the line still names it
    bad("blank.jsonl", good + b"\n" + json.dumps({"id": "A1"}).encode() + b"\n", r"blank.jsonl:3: row 1 \(A1\): needs 'names'")
    # a CSV's rows are not its lines (a header, blank lines, quoted line breaks): the line where the row starts
    bad("rows.csv", b"id,name\nA0,y\n,x\n", r"rows.csv:3: row 1: needs a non-empty string 'id'")
    bad("quoted.csv", b'id,name\nA0,"two\nlines"\n\nA2,"x"\n,z\n', r"quoted.csv:6: row 2: needs a non-empty string 'id'")


def test_hf_kb_columns_that_would_be_lost(tmp_path):
    f = tmp_path / "kb.jsonl"
    f.write_text(json.dumps({"id": "A0", "names": ["y"], "semantic_type": "T047"}) + "\n" + json.dumps({"id": "A1", "name": "x", "synonym": ["z"]}) + "\n")
    with pytest.raises(InputFormatError, match=r"kb.jsonl:2: row 1 \(A1\): column key 'synonym' is not one of .*did you mean 'synonyms'\?"):
        read_kb_dataset(str(f))
    f.write_text(json.dumps({"id": "A0", "names": ["y"], "name": "x"}) + "\n")
    with pytest.raises(InputFormatError, match=r"row 0 \(A0\): has 'names' and 'name' / 'synonyms'"):
        read_kb_dataset(str(f))
    f.write_text(json.dumps({"id": "A0", "names": ["y"], "semantic_type": "T047"}) + "\n")
    assert read_kb_dataset(str(f)).stats()["ignored_column_keys"] == 1


def test_a_csv_kb_gives_its_list_columns_as_bar_separated_text(tmp_path):
    f = tmp_path / "kb.csv"
    f.write_text('id,name,synonyms,alt_ids\nA0,Diabetes,"DM|sugar disease",OMIM:1\nA1,Flu,,\n')
    kb = read_kb_dataset(str(f))
    assert kb.concepts["A0"].names == ["Diabetes", "DM", "sugar disease"] and kb.canonical_id("OMIM:1") == "A0"
    assert kb.concepts["A1"].names == ["Flu"]
