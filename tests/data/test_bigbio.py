"""BigBIO-schema corpora from ``datasets`` (save_to_disk, parquet, JSONL) read as the same documents
and mentions as the PubTator file they were made from; bad examples name themselves."""

from __future__ import annotations

import copy
import json

import pytest
from datasets import Dataset, DatasetDict

from angel_trl.data.bigbio import read_bigbio
from angel_trl.data.corpus import load_corpus, read_pubtator
from angel_trl.data.hf_datasets import split_source
from angel_trl.errors import InputFormatError

PUBTATOR = """1|t|Lung cancer and ADA.
1|a|Breast or ovarian cancer is common. ADA.
1\t0\t11\tLung cancer\tDisease\tMESH:D1
1\t16\t19\tADA\tDisease\t OMIM:123
1\t21\t45\tBreast or ovarian cancer\tCompositeMention\tD2|D3
1\t57\t60\tADA\tDisease\t-1
1\t0\t4\tLung\tChemical\tD9
1\tCID\tD5\tD1

2|t|Cystic fibrosis.
2|a|CF again: lung cancer.
2\t0\t15\tCystic fibrosis\tDisease\tD4+D5
2\t17\t19\tCF\tDisease\tMESH:D4
"""


def _entity(i: int, start: int, end: int, text: str, mtype: str, raw_ids: str) -> dict:
    """A BigBIO entity as the BigBIO NCBI loader writes one: one normalized entry per id."""
    ids = [p for p in raw_ids.replace("+", "|").split("|") if p.strip()]
    normalized = [{"db_name": i.split(":")[0] if ":" in i else "MESH", "db_id": i.strip()} for i in ids]
    return {"id": f"e{i}", "type": mtype, "text": [text], "offsets": [[start, end]], "normalized": normalized}


def bigbio_rows(pubtator: str = PUBTATOR) -> list[dict]:
    """The BigBIO-kb examples of a PubTator text (title and abstract passages, one entity per line)."""
    rows = []
    for n, block in enumerate(pubtator.strip().split("\n\n")):
        lines = block.split("\n")
        pmid, title = lines[0].split("|t|")
        abstract = lines[1].split("|a|")[1]
        passages = [
            {"id": f"{pmid}_t", "type": "title", "text": [title], "offsets": [[0, len(title)]]},
            {"id": f"{pmid}_a", "type": "abstract", "text": [abstract], "offsets": [[len(title) + 1, len(title) + 1 + len(abstract)]]},
        ]
        entities, relations = [], []
        for i, line in enumerate(lines[2:]):
            cols = line.split("\t")
            if cols[1] == "CID":
                relations.append({"id": f"r{i}", "type": "CID", "arg1_id": cols[2], "arg2_id": cols[3], "normalized": []})
            else:
                entities.append(_entity(i, int(cols[1]), int(cols[2]), cols[3], cols[4], cols[5]))
        rows.append({"id": str(n), "document_id": pmid, "passages": passages, "entities": entities, "events": [], "coreferences": [], "relations": relations})
    return rows


@pytest.fixture()
def pubtator_corpus(tmp_path):
    f = tmp_path / "c.PubTator.txt"
    f.write_text(PUBTATOR)
    return read_pubtator(f)


def _same(a, b) -> None:
    assert [(d.id, d.text) for d in a.documents] == [(d.id, d.text) for d in b.documents]
    assert a.mentions == b.mentions


def _sources(tmp_path, rows) -> dict[str, str]:
    """The rows as a saved Dataset, a saved DatasetDict (test split), a parquet folder, a JSONL file."""
    ds = Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "saved"))
    DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "saved_dict"))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "pq" / "data" / "test-00000-of-00001.parquet"))
    ds.to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"saved": str(tmp_path / "saved"), "dict": f"{tmp_path / 'saved_dict'}:test", "parquet": f"{tmp_path / 'pq'}:test", "jsonl": str(jsonl)}


def test_bigbio_reads_as_the_pubtator_file(tmp_path, pubtator_corpus):
    for kind, source in _sources(tmp_path, bigbio_rows()).items():
        corpus = load_corpus(source, "bigbio")
        _same(corpus, pubtator_corpus)
        assert corpus.counts["relations_skipped"] == 1, kind
    ms = pubtator_corpus.mentions
    assert ms[0].ids == ("D1",) and ms[1].ids == ("123",) and ms[2].composite and ms[3].is_nil and ms[5].ids == ("D4", "D5")


def test_bigbio_entity_types(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text(PUBTATOR)
    source = _sources(tmp_path, bigbio_rows())["saved"]
    corpus = read_bigbio(source, ["Disease"])
    _same(corpus, read_pubtator(f, ["Disease"]))
    assert corpus.counts["other_type_mentions"] == 2  # the Chemical and the CompositeMention
    with pytest.raises(InputFormatError, match="no mentions of type Gene; types found: Disease"):
        read_bigbio(source, ["Gene"])


def test_bigbio_discontinuous_entity_is_a_composite_span(tmp_path):
    rows = bigbio_rows()
    rows[0]["entities"] = [{"id": "d", "type": "Disease", "text": ["Breast", "cancer"], "offsets": [[21, 27], [39, 45]], "normalized": [{"db_name": "MESH", "db_id": "D2"}]}]
    c = read_bigbio(_sources(tmp_path, rows)["jsonl"])
    m = c.mentions[0]
    assert (m.start, m.end, m.text, m.ids, m.composite) == (21, 45, "Breast or ovarian cancer", ("D2",), True)
    assert c.counts["discontinuous_mentions"] == 1


def test_bigbio_empty_db_ids_are_counted(tmp_path):
    rows = bigbio_rows()
    rows[0]["entities"] = [
        {"id": "d", "type": "Disease", "text": ["cancer"], "offsets": [[39, 45]], "normalized": [{"db_name": "MESH", "db_id": ""}]},
        {"id": "e", "type": "Disease", "text": ["Breast"], "offsets": [[21, 27]], "normalized": [{"db_name": "MESH", "db_id": " "}, {"db_name": "MESH", "db_id": "D2"}]},
    ]
    c = read_bigbio(_sources(tmp_path, rows)["jsonl"])
    assert [m.ids for m in c.mentions[:2]] == [(), ("D2",)]  # the first is NIL, as an empty PubTator id column
    assert c.counts["empty_db_ids_skipped"] == 2


def test_bigbio_passage_gaps_are_spaces(tmp_path):
    rows = bigbio_rows()
    rows[0]["passages"][1]["offsets"] = [[len("Lung cancer and ADA.") + 3, len("Lung cancer and ADA.") + 3 + len(rows[0]["passages"][1]["text"][0])]]
    rows[0]["entities"] = rows[0]["entities"][:2]
    doc = read_bigbio(_sources(tmp_path, rows)["jsonl"]).documents[0]
    assert doc.text.startswith("Lung cancer and ADA.   Breast")


def _bad(tmp_path, change, match: str) -> None:
    rows = copy.deepcopy(bigbio_rows())
    change(rows)
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputFormatError, match=match):
        read_bigbio(str(f))


def test_bigbio_bad_examples_name_the_example(tmp_path):
    def offsets(rows):
        rows[1]["entities"][0]["offsets"] = [[0, 400]]

    def text(rows):
        rows[1]["entities"][1]["text"] = ["CX"]

    def no_entities(rows):
        del rows[1]["entities"]

    def no_normalized(rows):
        del rows[0]["entities"][2]["normalized"]

    def passage(rows):
        rows[0]["passages"][1]["text"] = ["too short"]

    def overlap(rows):
        rows[0]["passages"][1]["offsets"] = [[5, 5 + len(rows[0]["passages"][1]["text"][0])]]

    def pieces(rows):
        rows[0]["entities"][0]["text"] = ["Lung", "cancer"]

    def no_id(rows):
        rows[1]["document_id"] = rows[1]["id"] = ""

    _bad(tmp_path, offsets, r"bad.jsonl:2: example 1 \(document '2'\): entity 'e0': offsets 0-400 outside")
    _bad(tmp_path, text, r"bad.jsonl:2: example 1 \(document '2'\): entity 'e1': mention 'CX' does not match text\[17:19\] = 'CF'")
    _bad(tmp_path, no_entities, r"example 1 \(document '2'\): the example: missing or not a list: 'entities'")
    _bad(tmp_path, no_normalized, r"example 0 \(document '1'\): entity 'e2': missing or not a list: 'normalized'")
    _bad(tmp_path, passage, r"example 0 \(document '1'\): passage '1_a': offsets 21-61 do not fit its text of length 9")
    _bad(tmp_path, overlap, r"example 0 \(document '1'\): passage '1_a': text .* differs from the document text")
    _bad(tmp_path, pieces, r"example 0 \(document '1'\): entity 'e0': 1 offsets but 2 text pieces")
    _bad(tmp_path, no_id, r"bad.jsonl:2: example 1: needs a non-empty 'document_id'")


def test_bigbio_splits_and_missing_sources(tmp_path):
    sources = _sources(tmp_path, bigbio_rows())
    with pytest.raises(InputFormatError, match="has splits train, test: name one as SOURCE:SPLIT"):
        read_bigbio(str(tmp_path / "saved_dict"))
    with pytest.raises(InputFormatError, match="no split 'dev'; the dataset has train, test"):
        read_bigbio(f"{tmp_path / 'pq'}:dev")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_bigbio(str(tmp_path / "absent"))
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"id": "1", "passages": [\n')
    with pytest.raises(InputFormatError, match=r"broken.jsonl:1: invalid JSON"):
        read_bigbio(str(bad))
    assert sources["saved"]


def test_split_source():
    assert split_source("bigbio/ncbi_disease:test") == ("bigbio/ncbi_disease", None, "test")
    assert split_source("bigbio/ncbi_disease:ncbi_disease_bigbio_kb:test") == ("bigbio/ncbi_disease", "ncbi_disease_bigbio_kb", "test")
    assert split_source("bigbio/ncbi_disease") == ("bigbio/ncbi_disease", None, None)
    assert split_source("/data/x:y/z") == ("/data/x:y/z", None, None)


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """The local Hub stand-in (tests/hub_stub.py) with huggingface_hub and datasets pointed at it
    (their constants patched, as tests/test_hub.py does: both read the environment when imported)."""
    import datasets.config
    import huggingface_hub.constants as hf_constants

    from tests.hub_stub import HubStub

    with HubStub() as stub:
        for key, value in {"HF_ENDPOINT": stub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"}.items():
            monkeypatch.setenv(key, value)
        for name, value in {
            "ENDPOINT": stub.endpoint, "HUGGINGFACE_CO_URL_TEMPLATE": stub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True, "HF_HUB_OFFLINE": False, "HF_HUB_CACHE": str(tmp_path / "hub"),
        }.items():
            monkeypatch.setattr(hf_constants, name, value)
        for name, value in {
            "HF_ENDPOINT": stub.endpoint, "HUB_DATASETS_URL": stub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False, "HF_DATASETS_CACHE": tmp_path / "datasets",
        }.items():
            monkeypatch.setattr(datasets.config, name, value)
        yield stub
        assert not stub.unhandled, f"calls the stub does not serve: {stub.unhandled}"


def test_bigbio_from_a_hub_id(hub, pubtator_corpus):
    ds = Dataset.from_list(bigbio_rows())
    DatasetDict({"train": ds, "test": ds}).push_to_hub("tester/bigbio-toy", config_name="toy_bigbio_kb", token="hf_stub_token")
    _same(load_corpus("tester/bigbio-toy:toy_bigbio_kb:test", "bigbio"), pubtator_corpus)
    # offline, the datasets cache answers
    import datasets.config
    import huggingface_hub.constants as hf_constants

    requests = len(hub.requests)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        _same(read_bigbio("tester/bigbio-toy:toy_bigbio_kb:test"), pubtator_corpus)
    assert len(hub.requests) == requests
    with pytest.raises(FileNotFoundError, match="tester/absent:test: no such local file or folder, nor a Hub dataset: Dataset 'tester/absent' doesn't exist"):
        read_bigbio("tester/absent:test")


def test_recipe_data_arguments_take_a_datasets_source_with_its_split(tmp_path):
    from angel_trl.data.arguments import DataArguments
    from angel_trl.errors import FieldError

    _sources(tmp_path, bigbio_rows())
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"id": "D1", "names": ["x"]}\n')

    def check(train_file: str) -> None:
        DataArguments(kb_path=str(kb), corpus_format="bigbio", train_file=train_file).check_files()

    check(f"{tmp_path / 'pq'}:train")  # a folder and its split
    check("bigbio/ncbi_disease:ncbi_disease_bigbio_kb:train")  # a Hub id: read when the recipe runs
    with pytest.raises(FieldError, match="absent: no such file or dataset folder"):
        check(f"{tmp_path / 'absent'}:train")
