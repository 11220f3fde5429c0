"""The hybrid linker: exact teacher-forced scores, the candidate union, the ranker and its file."""

import json

import numpy as np
import pytest

from angel_trl.data.corpus import load_corpus
from angel_trl.data.dictionary import dictionary_protocol, table_with_training_texts, training_link_counts
from angel_trl.hybrid.linker import FEATURES, HYBRID_FILE, HybridLinker
from angel_trl.hybrid.ranker import LinearRanker, precision_coverage
from angel_trl.hybrid.scoring import name_log_probs
from angel_trl.linking.linker import EntityLinker
from tests.conftest import TOY_MENTIONS, toy_documents, write_jsonl


@pytest.fixture(scope="module")
def toy(trained_toy, toy_dir):
    out, _ = trained_toy
    linker = EntityLinker.from_pretrained(out, num_beams=6, top_k=3)
    corpus = load_corpus(toy_dir / "train.jsonl", "jsonl")
    return linker, corpus


def _gold(corpus, kb):
    return [{kb.canonical_id(g) for g in m.ids} - {None} for m in corpus.mentions]


def test_teacher_forced_score_equals_the_beam_score(toy):
    linker, corpus = toy
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    results = linker.link(inputs)
    ex = linker.config.example_config
    names = [[b.name for b in r.beam] for r in results]
    scores = name_log_probs(linker.model, linker.encoder, [x.source for x in inputs], [ex.prompt(x.mention) for x in inputs], names, mentions_per_batch=3, names_per_batch=5)
    beam = [b.score for r in results for b in r.beam]
    assert len(beam) > len(inputs)  # several beams per mention, batched across mentions and rows
    np.testing.assert_allclose([s for row in scores for s in row], beam, atol=1e-4)


def test_union_holds_the_beam_and_the_retrieved_concepts(toy):
    linker, corpus = toy
    hybrid = HybridLinker(linker)
    beams, candidates = hybrid.candidates(linker.inputs_for(corpus.mentions, corpus.texts()))
    for beam, cands in zip(beams, candidates):
        assert beam.top_ids[0] in cands.concept_ids
        assert set(beam.top_ids) <= set(cands.concept_ids)
        assert cands.features.shape == (len(cands.concept_ids), len(FEATURES))
        assert len(set(cands.concept_ids)) == len(cands.concept_ids)
    # "ADA" names two concepts: both are candidates (exact match) whatever the beam found.
    ada = [c for m, c in zip(corpus.mentions, candidates) if m.text == "ADA"]
    assert ada and all({"C2", "C3"} <= set(c.concept_ids) for c in ada)
    # A beam candidate's model feature is its best beam score (the same quantity).
    for beam, cands in zip(beams, candidates):
        best = max(b.score for b in beam.beam if beam.top_ids[0] in b.concept_ids)
        assert cands.features[cands.concept_ids.index(beam.top_ids[0]), FEATURES.index("model")] >= best - 1e-4


def test_fit_save_load_gives_the_same_ranking(toy, toy_kb, tmp_path):
    linker, corpus = toy
    hybrid = HybridLinker.from_training(linker, corpus)
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    beams, candidates = hybrid.candidates(inputs)
    summary = hybrid.fit_on(corpus, toy_kb)
    assert summary["mentions"] == len(corpus.mentions) == summary["gold_in_candidates"]
    ranker = hybrid.ranker
    assert ranker.features == list(FEATURES) and all(np.isfinite(ranker.coef))
    first = hybrid.rank(beams, candidates)
    path = hybrid.save(tmp_path)
    assert path.name == HYBRID_FILE and json.loads(path.read_text())["format"] == "angel-trl-hybrid"
    again = HybridLinker.load(linker, tmp_path)
    assert again.table.names == hybrid.table.names and again.train_counts == hybrid.train_counts
    second = again.link(inputs)
    assert [r.top_ids for r in second] == [r.top_ids for r in first]
    np.testing.assert_allclose([c.score for r in second for c in r.candidates], [c.score for r in first for c in r.candidates], atol=1e-9)
    assert all(0.0 <= c.score <= 1.0 for r in second for c in r.candidates)  # probabilities


def test_the_saved_training_dictionary_rebuilds_the_kb_plus_train_table(toy_kb, tmp_path):
    # New synonyms ("lung tumour") and a shared name whose training links reorder its concepts.
    mentions = [*TOY_MENTIONS, ("A {} was resected.", "Lung Tumour", "C1"), ("The {} statement was cited.", "ADA", "C3"), ("Per {} advice.", "ADA", "C3")]
    corpus = load_corpus(write_jsonl(tmp_path / "train.jsonl", toy_documents(mentions)), "jsonl")
    protocol = dictionary_protocol(toy_kb, corpus)
    rebuilt = table_with_training_texts(toy_kb, training_link_counts(corpus, toy_kb))
    assert "lung tumour" in rebuilt.names and rebuilt.concept_ids[rebuilt.index_of("ADA")] == ["C3", "C2"]
    assert (rebuilt.names, rebuilt.concept_ids) == (protocol.table.names, protocol.table.concept_ids)


def test_hybrid_is_deterministic(toy):
    linker, corpus = toy
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    a, b = HybridLinker(linker).link(inputs), HybridLinker(linker).link(inputs)
    assert [(r.top_ids, [c.score for c in r.candidates]) for r in a] == [(r.top_ids, [c.score for c in r.candidates]) for r in b]


def test_ranker_on_one_feature_ranks_by_it(tmp_path):
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    ranker = LinearRanker.fit(X, np.array([0, 0, 1, 1]), ["model"])
    assert np.all(np.diff(ranker.probability(X)) > 0)
    ranker.save(tmp_path / "r.json")
    assert LinearRanker.load(tmp_path / "r.json") == ranker
    with pytest.raises(ValueError, match="both gold and wrong"):
        LinearRanker.fit(X, np.ones(4, dtype=int), ["model"])
    (tmp_path / "bad.json").write_text(json.dumps({"format": "angel-trl-ranker", "features": ["model"], "mean": [0.0], "scale": [1.0, 2.0], "coef": [1.0], "intercept": 0.0}))
    with pytest.raises(ValueError, match="one length"):
        LinearRanker.load(tmp_path / "bad.json")


def test_precision_coverage_keeps_the_most_confident_first():
    rows = precision_coverage([0.9, 0.8, 0.3, 0.1], [True, True, False, True], points=4)
    assert [r["coverage"] for r in rows] == [0.25, 0.5, 0.75, 1.0]
    assert [r["precision"] for r in rows] == [100.0, 100.0, pytest.approx(200 / 3), 75.0]
    assert [r["threshold"] for r in rows] == [0.9, 0.8, 0.3, 0.1]
