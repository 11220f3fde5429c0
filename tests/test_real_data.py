"""Integration checks on the real benchmarks in ../shared/data (skipped when absent)."""

import pytest

from angel_trl.data.corpus import read_pubtator
from angel_trl.text.examples import ExampleConfig, build_stage1_rows
from angel_trl.data.kb import read_medic
from angel_trl.modeling import train_tokenizer
from angel_trl.data.names import NameTable
from angel_trl.text.tfidf import TfidfNameMatcher
from angel_trl.text.tokenization import SequenceEncoder
from angel_trl.linking.trie import NameTrie

from tests.conftest import require_shared_data

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def medic():
    return read_medic(require_shared_data() / "kb/medic/medic_06Jul2012.txt")


def test_every_ncbi_gold_id_is_in_medic(medic):
    d = require_shared_data()
    test = read_pubtator(d / "ncbi-disease/NCBItestset_corpus.txt")
    missing = [m for m in test.mentions if any(medic.canonical_id(i) is None for i in m.ids)]
    assert len(test.mentions) == 960 and not missing


def test_medic_trie_round_trips_every_name(medic):
    table = NameTable.from_kb(medic)
    enc = SequenceEncoder(train_tokenizer(table.names[::7], 4000))
    seqs = enc.names(table.names)
    trie = NameTrie.build(seqs, enc.eos)
    assert [trie.name_of(s) for s in seqs] == list(range(len(table)))  # lowercased names are distinct
    assert trie.nbytes < 20 * trie.num_nodes


def test_ncbi_stage1_rows(medic):
    d = require_shared_data()
    train = read_pubtator(d / "ncbi-disease/NCBItrainset_corpus.txt")
    table = NameTable.from_kb(medic)
    rows = build_stage1_rows(train, medic, table, TfidfNameMatcher(table), ExampleConfig(max_context_words=16), top_k=3)
    counts = rows.counts
    assert counts["skipped_composite"] == 167 and counts.get("skipped_gold_not_in_kb", 0) == 0
    assert counts["rows_mention"] > 3 * (5145 - 167) * 0.8
    for target in rows.targets:
        assert table.index_of(target) is not None


def test_the_generic_benchmark_gives_the_committed_ncbi_peer_numbers(tmp_path):
    """`angel-trl benchmark` on the NCBI files (the path any user's data takes) gives the peers exactly
    the acc@1 the preset benchmark committed in benchmarks/results/ncbi.json."""
    import json
    from pathlib import Path

    from angel_trl.cli.app import main

    d = require_shared_data()
    ncbi = d / "ncbi-disease"
    rc = main([
        "benchmark", "--kb", str(d / "kb/medic/medic_06Jul2012.txt"), "--kb-format", "medic", "--corpus-format", "pubtator",
        "--train", str(ncbi / "NCBItrainset_corpus.txt"), "--test", str(ncbi / "NCBItestset_corpus.txt"),
        "--no-dense", "--name", "ncbi", "--results-dir", str(tmp_path),
    ])
    assert rc == 0
    ours = json.loads((tmp_path / "ncbi.json").read_text())["splits"]["test"]
    committed = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/ncbi.json").read_text())["splits"]["test"]
    for system in ("exact match", "TF-IDF char-3 (word-bounded)", "train dictionary + TF-IDF"):
        for protocol, metrics in committed[system].items():
            assert ours[system][protocol]["acc@1"] == metrics["acc@1"], (system, protocol)
