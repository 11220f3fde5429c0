"""Choosing the hybrid's ranker by cross-validation on dev, documents kept whole."""

import numpy as np
import pytest

from angel_trl.hybrid.linker import HybridLinker
from angel_trl.hybrid.selection import DEFAULT_RANKER_FEATURES, RANKER_MENU, choose_ranker, document_folds, held_out_acc1


def test_document_folds_keep_documents_whole_and_follow_the_seed():
    docs = [f"d{i // 3}" for i in range(30)]  # 10 documents of 3 mentions
    fold = document_folds(docs, 4, seed=1)
    for d in set(docs):
        assert len({int(f) for f, x in zip(fold, docs) if x == d}) == 1
    assert sorted(np.bincount(fold).tolist()) == [6, 6, 9, 9]  # 10 documents dealt round 4 folds
    assert np.array_equal(fold, document_folds(docs, 4, seed=1))
    assert not np.array_equal(fold, document_folds(docs, 4, seed=2))


def _candidates(rng, n=80):
    """Per mention 2-6 candidate rows [a, b]: the gold has the highest ``a``; ``b`` is noise."""
    X, gold = [], []
    for _ in range(n):
        g = int(rng.integers(2, 7))
        a, b = rng.normal(size=g), rng.normal(size=g)
        X.append(np.column_stack([a, b]))
        gold.append(np.arange(g) == int(np.argmax(a)))
    return X, gold


def test_choose_ranker_takes_the_best_held_out_choice_and_the_first_of_equals():
    X, gold = _candidates(np.random.default_rng(0))
    docs = [f"d{i // 4}" for i in range(len(X))]
    columns = lambda names: [x[:, [["a", "b"].index(n) for n in names]] for x in X]  # noqa: E731
    choice = choose_ranker(columns, gold, docs, {"noise": (("b",), "listwise"), "signal": (("a",), "listwise"), "both": (("a", "b"), "listwise")}, folds=4)
    assert choice.cv_acc1["signal"] == 100.0 and choice.cv_acc1["noise"] < 60.0
    assert choice.name in ("signal", "both") and choice.cv_acc1[choice.name] == max(choice.cv_acc1.values())
    same = choose_ranker(columns, gold, docs, {"first": (("a",), "listwise"), "second": (("a",), "pointwise")}, folds=4)
    assert same.cv_acc1["first"] == same.cv_acc1["second"] == 100.0 and same.name == "first"
    # every held-out mention is ranked by a fit that never saw its document
    fold = document_folds(docs, 4, seed=42)
    assert held_out_acc1(columns(["a"]), gold, ["a"], "listwise", fold, 42) == 100.0
    with pytest.raises(ValueError, match="at least one"):
        choose_ranker(columns, gold, docs, {})


def test_fit_with_a_choice_reports_it_and_fits_the_chosen_ranker(trained_toy, toy_dir, toy_kb):
    from angel_trl.data.corpus import load_corpus
    from angel_trl.linking.linker import EntityLinker

    linker = EntityLinker.from_pretrained(trained_toy[0], num_beams=6, top_k=3)
    corpus = load_corpus(toy_dir / "train.jsonl", "jsonl")
    hybrid = HybridLinker.from_training(linker, corpus)
    summary = hybrid.fit_on(corpus, toy_kb, choose_from=RANKER_MENU, folds=3)
    chosen = summary["selection"]
    assert set(chosen["cv_acc1"]) == {"given", *RANKER_MENU} and chosen["folds"] == 3
    assert chosen["cv_acc1"][chosen["name"]] == max(chosen["cv_acc1"].values())
    assert hybrid.ranker.features == chosen["features"] and hybrid.ranker.objective == chosen["objective"]
    assert chosen["name"] != "given" or chosen["features"] == list(DEFAULT_RANKER_FEATURES)  # "given": the fit's own (default) features
    with pytest.raises(ValueError, match="ranker features"):
        hybrid.fit_on(corpus, toy_kb, choose_from={"bad": (("nope",), "listwise")})


def test_fit_set_filter_keeps_the_dev_mentions_of_concepts_or_texts_training_lacks(toy_kb):
    from angel_trl.data.corpus import Mention
    from angel_trl.errors import FieldError
    from angel_trl.evaluation import TrainingSeen
    from angel_trl.hybrid.selection import fit_set_filter

    def mention(text, *ids):
        return Mention(doc_id="d", start=0, end=len(text), text=text, ids=tuple(ids))

    seen = TrainingSeen.of([mention("lung cancer", "C1"), mention("IDDM", "OMIM:222100")], toy_kb)  # C6 by its alternative id
    assert fit_set_filter("all", seen, toy_kb) is None
    keep = fit_set_filter("unseen-concept", seen, toy_kb)
    assert keep(mention("CF", "C5")) and keep(mention("ADA", "C2"))
    assert not keep(mention("pulmonary carcinoma", "C1")) and not keep(mention("type 1 diabetes", "C6"))
    assert not keep(mention("lung cancer or CF", "C1", "C5"))  # a composite mention with one trained concept is of a seen concept
    assert keep(mention("new", "NOT-IN-KB"))  # a gold id the KB lacks: no training mention carries it
    with pytest.raises(FieldError, match="needs the training split"):
        fit_set_filter("unseen-concept", None, toy_kb)
    new_text = fit_set_filter("unseen-text", seen, toy_kb)  # by text, normalised as the reports' seen / unseen split
    assert new_text(mention("pulmonary carcinoma", "C1")) and new_text(mention("CF", "C5"))  # a new synonym of a trained concept counts
    assert not new_text(mention("Lung  Cancer", "C1")) and not new_text(mention("iddm", "C6"))
    with pytest.raises(FieldError, match="'unseen-text' needs the training split"):
        fit_set_filter("unseen-text", None, toy_kb)
    with pytest.raises(FieldError, match="fit_on"):
        fit_set_filter("unseen", seen, toy_kb)


def test_fit_on_a_subset_fits_on_its_mentions_only_and_refuses_an_empty_one(trained_toy, toy_dir, toy_kb):
    from angel_trl.data.corpus import load_corpus
    from angel_trl.linking.linker import EntityLinker

    linker = EntityLinker.from_pretrained(trained_toy[0], num_beams=6, top_k=3)
    corpus = load_corpus(toy_dir / "train.jsonl", "jsonl")
    hybrid = HybridLinker.from_training(linker, corpus)
    summary = hybrid.fit_on(corpus, toy_kb, keep=lambda m: m.ids[0] in ("C1", "C2", "C3"))
    assert (summary["mentions"], summary["mentions_left_out"]) == (4, 4)
    assert summary["candidates"] < hybrid.fit_on(corpus, toy_kb)["candidates"]
    with pytest.raises(ValueError, match="no dev mention is left"):
        hybrid.fit_on(corpus, toy_kb, keep=lambda m: False)


def test_a_fold_with_nothing_left_to_fit_on_ranks_by_the_first_feature():
    X, gold = _candidates(np.random.default_rng(3), n=3)
    # one document: its only fold has no other fold to be fit on
    assert held_out_acc1([x[:, [0]] for x in X], gold, ["a"], "listwise", np.zeros(3, dtype=np.int64), 42) == 100.0
