from angel_trl.baselines import ExactMatchLinker, TfidfLinker, with_training_mentions
from angel_trl.corpus import Corpus, Document, Mention


def test_exact_and_tfidf_baselines(toy_kb):
    ms = [Mention("d", 0, 11, "Lung Cancer", ("C1",)), Mention("d", 0, 3, "ADA", ("C3",)), Mention("d", 0, 14, "lung carcinoma", ("C1",))]
    exact = ExactMatchLinker(toy_kb).link(ms)
    assert exact[0].top_ids == ["C1"] and exact[1].top_ids == ["C2", "C3"] and exact[2].top_ids == []
    tfidf = TfidfLinker(toy_kb, top_k=3).link(ms)
    assert tfidf[0].top_ids[0] == "C1" and tfidf[2].top_ids[0] == "C1"
    assert all(len(set(r.top_ids)) == len(r.top_ids) <= 3 for r in tfidf)


def test_training_mentions_become_synonyms(toy_kb):
    train = Corpus([Document("d", "mucovisc", [Mention("d", 0, 8, "mucovisc", ("C5",)), Mention("d", 0, 8, "mucovisc", ("C1", "C5"), composite=True)])])
    kb2 = with_training_mentions(toy_kb, train)
    assert kb2.ids_for_name("mucovisc") == ["C5"] and toy_kb.ids_for_name("mucovisc") == []
