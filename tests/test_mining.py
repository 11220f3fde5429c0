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
