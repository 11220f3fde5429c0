"""The linking metric: the function evaluate_linking uses, and its Hugging Face ``evaluate`` form."""

import pytest

from angel_trl.metrics import LinkingAccuracy, linking_accuracy


def test_acc_at_k_over_distinct_concepts_with_nil_and_composites():
    predictions = [["D1", "D1", "D2"], ["D3"], ["D9"], []]
    references = [["D2"], ["D4", "D3"], [], ["D5"]]
    scores, correct = linking_accuracy(predictions, references, k=(1, 2))
    # D1 repeated counts once, so D2 is within the top 2; the NIL mention is left out.
    assert scores == {"evaluated": 3, "nil_excluded": 1, "composite": 1, "acc@1": pytest.approx(100 / 3), "acc@2": pytest.approx(200 / 3)}
    assert correct == [{1: False, 2: True}, {1: True, 2: True}, {}, {1: False, 2: False}]


def test_groups_score_their_flagged_mentions():
    scores, _ = linking_accuracy([["A"], ["B"], ["C"]], [["A"], ["X"], ["C"]], k=(1,), groups={"unseen": [False, True, True]})
    assert scores["unseen_mentions"] == 2 and scores["unseen_acc@1"] == 50.0 and scores["acc@1"] == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="group 'unseen' has 1 flags for 3 mentions"):
        linking_accuracy([["A"]] * 3, [["A"]] * 3, groups={"unseen": [True]})


def test_the_evaluate_metric_gives_the_same_scores_in_one_call_or_in_batches():
    predictions, references = [["D1", "D2"], ["D3"], ["D5"]], [["D2"], ["D4", "D3"], []]
    expected = linking_accuracy(predictions, references, k=(1, 5))[0]
    assert LinkingAccuracy().compute(predictions=predictions, references=references, k=[1, 5]) == expected
    metric = LinkingAccuracy()
    metric.add_batch(predictions=predictions[:2], references=references[:2])
    metric.add_batch(predictions=predictions[2:], references=references[2:])
    assert metric.compute(k=[1, 5]) == expected


def test_evaluate_linking_scores_through_the_metric(trained_toy, toy_dir, toy_kb):
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.evaluation import TrainingSeen, evaluate_linking
    from angel_trl.linking.linker import EntityLinker

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    results = EntityLinker.from_pretrained(trained_toy[0]).link(EntityLinker.from_pretrained(trained_toy[0]).inputs_for(corpus.mentions, corpus.texts()))
    metrics, rows = evaluate_linking(corpus.mentions, results, toy_kb, TrainingSeen.of(corpus.mentions, toy_kb))
    direct = LinkingAccuracy().compute(predictions=[r.top_ids for r in results], references=[list(m.ids) for m in corpus.mentions], k=[1, 5])
    assert {k: metrics[k] for k in direct} == direct
    assert metrics["seen_mentions"] == 8 and metrics["unseen_mentions"] == 0
