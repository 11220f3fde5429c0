import pytest

from angel_trl.linking import Candidate
from angel_trl.mining import Pair, pairs_from_ranking


def ranking(*ids):
    return [Candidate(cid, f"name of {cid}", -float(i)) for i, cid in enumerate(ids)]


@pytest.mark.parametrize(
    "ids,gold,rule,fallback,pairs,case",
    [
        (["G", "A", "B"], {"G"}, "paper", False, [Pair(0, 1)], "top1_correct"),  # top-1 right: vs best wrong
        (["A", "B", "G", "C"], {"G"}, "paper", False, [Pair(2, 0), Pair(2, 1)], "misranked"),  # wrong above right only
        (["A", "G", "G2", "B"], {"G", "G2"}, "paper", False, [Pair(1, 0)], "misranked"),  # chosen = best-ranked correct
        (["A", "B"], {"G"}, "paper", False, [], "no_correct"),
        (["A", "B"], {"G"}, "paper", True, [Pair(-1, 0), Pair(-1, 1)], "no_correct"),  # gold fallback option
        (["G", "G2"], {"G", "G2"}, "paper", False, [], "all_correct"),
        ([], {"G"}, "paper", False, [], "empty"),
        (["A", "G", "B", "C"], {"G"}, "all", False, [Pair(1, 0), Pair(1, 2), Pair(1, 3)], "misranked"),
        (["G", "A", "B"], {"G"}, "all", False, [Pair(0, 1), Pair(0, 2)], "top1_correct"),
    ],
)
def test_pair_rules(ids, gold, rule, fallback, pairs, case):
    assert pairs_from_ranking(ranking(*ids), gold, rule, fallback) == (pairs, case)


def test_ties_follow_beam_order():
    cands = [Candidate("A", "ada", -1.0), Candidate("G", "ada", -1.0), Candidate("B", "b", -2.0)]
    # a name shared by a wrong and the gold concept, at the same score: the wrong one ranks first
    assert pairs_from_ranking(cands, {"G"}) == ([Pair(1, 0)], "misranked")


def test_unknown_rule():
    with pytest.raises(ValueError, match="paper"):
        pairs_from_ranking(ranking("A"), {"A"}, "tfidf")


def test_mining_on_a_trained_model_is_deterministic(trained_toy, toy_dir, toy_kb):
    from angel_trl.corpus import read_corpus_jsonl
    from angel_trl.linking import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs

    linker = EntityLinker.from_pretrained(trained_toy[0])
    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    ds, summary = mine_pairs(linker, corpus, toy_kb, MiningConfig(num_beams=6, top_k=5), show_progress=False)
    again, summary2 = mine_pairs(linker, corpus, toy_kb, MiningConfig(num_beams=6, top_k=5), show_progress=False)
    assert ds.to_list() == again.to_list() and summary == summary2
    assert summary["mentions"] == 8 and summary["top1_correct_share"] == 1.0  # the model is right on its training data
    assert summary["pairs"] == len(ds) == summary["case_top1_correct"] - summary.get("skipped_same_name", 0)
    for row in ds:
        assert row["chosen"] != row["rejected"] and row["rejected_id"] not in row["gold_ids"]
        assert toy_kb.canonical_id(row["rejected_id"]) and row["decoder_prompt"].endswith(" is")
    tfidf, tsummary = mine_pairs(linker, corpus, toy_kb, MiningConfig(rule="tfidf", tfidf_negatives=2), show_progress=False)
    assert len(tfidf) == 16 and tsummary["case_tfidf"] == 8
    for row in tfidf:  # TF-IDF negatives never share a concept with the gold
        assert not set(toy_kb.ids_for_name(row["rejected"])) & set(row["gold_ids"])
