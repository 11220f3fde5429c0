import dataclasses

import pytest

from angel_trl.data.corpus import Mention
from angel_trl.evaluation import TrainingSeen, evaluate_linking, scores_table
from angel_trl.linking.linker import Candidate, LinkingResult


def result(*ids):
    return LinkingResult("m", [Candidate(i, i.lower(), -float(r)) for r, i in enumerate(ids)])


def mention(text, *ids, composite=False, start=0):
    return Mention("d", start, start + len(text), text, tuple(ids), composite=composite)


def test_metrics_on_hand_made_cases(toy_kb):
    mentions = [
        mention("lung cancer", "C1"),  # right at 1
        mention("ADA", "C3", start=1),  # right at 2
        mention("breast or lung cancer", "C4", "C1", composite=True, start=2),  # any gold id counts
        mention("nothing", start=3),  # NIL: excluded
        mention("CF", "222100", start=4),  # alt id of C6 (OMIM:222100), predicted at 6: wrong at 5
        mention("x", "NOT-IN-KB", start=5),  # cannot be right, counted
    ]
    results = [result("C1", "C2"), result("C2", "C3"), result("C1"), result("C1"), result("C1", "C2", "C3", "C4", "C5", "C6"), result("C1")]
    # Training saw the texts "lung cancer" and "ADA" (of C2, not C3) and the concepts C1, C2 and C6
    # (by its alt id): "ADA" -> C3 is seen text of an unseen concept, "CF" -> C6 unseen text of a seen one.
    seen = TrainingSeen.of([mention("Lung  Cancer", "C1"), mention("ADA", "C2"), mention("IDDM", "OMIM:222100")], toy_kb)
    assert seen.concepts == {"C1", "C2", "C6"}
    metrics, rows = evaluate_linking(mentions, results, toy_kb, seen)
    assert metrics["evaluated"] == 5 and metrics["nil_excluded"] == 1
    assert metrics["composite"] == 1 and metrics["gold_not_in_kb"] == 1
    assert metrics["acc@1"] == pytest.approx(100 * 2 / 5)
    assert metrics["acc@5"] == pytest.approx(100 * 3 / 5)
    assert (metrics["seen_mentions"], metrics["unseen_mentions"]) == (2, 3)
    assert metrics["seen_acc@1"] == 50.0 and metrics["seen_acc@5"] == 100.0
    assert metrics["unseen_acc@1"] == pytest.approx(100 / 3)
    # seen concepts: lung cancer (right), the composite (C1 is seen; right), CF -> C6 (wrong at 5)
    assert (metrics["seen_concept_mentions"], metrics["unseen_concept_mentions"]) == (3, 2)
    assert metrics["seen_concept_acc@1"] == pytest.approx(200 / 3) and metrics["unseen_concept_acc@1"] == 0.0
    assert metrics["unseen_concept_acc@5"] == 50.0  # ADA -> C3 at rank 2; the id missing from the KB never
    assert [r["seen_concept"] for r in rows] == [True, False, True, True, False]
    assert len(rows) == 5 and rows[0]["correct@1"] and not rows[1]["correct@1"] and rows[1]["correct@5"]
    assert "| dev | 5 | 40.0 | 60.0 | 50.0 (2) | 33.3 (3) | 66.7 (3) | 0.0 (2) |" in scores_table({"dev": metrics})


def test_length_mismatch_is_an_error(toy_kb):
    with pytest.raises(ValueError, match="2 mentions but 1 results"):
        evaluate_linking([mention("a", "C1"), mention("b", "C1")], [result("C1")], toy_kb)


def test_mcnemar_exact():
    from angel_trl.evaluation import mcnemar

    a = [{"mention_id": str(i), "correct@1": i < 10} for i in range(20)]
    b = [{"mention_id": str(i), "correct@1": i < 2 or i >= 10} for i in range(20)]
    out = mcnemar(a, b)
    # discordant: A-only 8 (ids 2..9), B-only 10 (ids 10..19); two-sided binomial p for 10 of 18
    assert (out["a_only"], out["b_only"]) == (8, 10)
    assert out["p_value"] == pytest.approx(0.8145294189453125)
    with pytest.raises(ValueError, match="different mentions"):
        mcnemar(a, b[:-1])


def test_comparison_table_marks_a_kept_start_model():
    from angel_trl.evaluation import comparison_table

    scores = {"dev": {"acc@1": 80.0, "acc@5": 90.0}, "test": {"acc@1": 70.0, "acc@5": 85.0}}
    table = comparison_table({"stage 1": scores, "stage 2": {**scores, "kept_start_model": True}})
    assert "| stage 1 | 80.0 | 90.0 | 70.0 | 85.0 |" in table
    assert "| stage 2 (no checkpoint beat the start on dev: start model kept) | 80.0 | 90.0 | 70.0 | 85.0 |" in table


def test_saved_predictions_come_back_as_the_same_results(toy_kb, tmp_path):
    from angel_trl.evaluation import saved_results
    from angel_trl.data.files import write_jsonl

    mentions = [mention("lung cancer", "C1"), mention("nothing", start=1), mention("ADA", "C3", start=2)]  # the second is NIL
    sources = ["Patients with [ST] lung cancer [ET] here", "[ST] nothing [ET]", "a [ST] ADA [ET] test"]
    results = [result("C2", "C1"), result("C5"), result("C3", "C2")]
    seen = TrainingSeen(frozenset({"ada"}), frozenset({"C3"}))
    metrics, rows = evaluate_linking(mentions, results, toy_kb, seen, sources=sources)
    write_jsonl(tmp_path / "predictions_test.jsonl", rows)
    back = saved_results(tmp_path / "predictions_test.jsonl", mentions, sources)
    assert [r.top_ids for r in back] == [["C2", "C1"], [], ["C3", "C2"]]  # NIL has no saved row
    assert evaluate_linking(mentions, back, toy_kb, seen, sources=sources) == (metrics, rows)
    # A file for other mentions (another split, or a corpus read differently) is not reused.
    assert saved_results(tmp_path / "predictions_test.jsonl", mentions[:1], sources[:1]) is None
    assert saved_results(tmp_path / "predictions_test.jsonl", [mention("lung cancer", "C1", start=5), *mentions[1:]], sources) is None
    # The same spans linked as other texts (an abbreviation expanded to its long form) are not either.
    assert saved_results(tmp_path / "predictions_test.jsonl", [*mentions[:2], dataclasses.replace(mentions[2], text="adenosine deaminase")], sources) is None
    # Nor the same mentions in another context (edited documents), nor rows saved without their inputs' digests.
    assert saved_results(tmp_path / "predictions_test.jsonl", mentions, [sources[0].replace("Patients", "Mice"), *sources[1:]]) is None
    write_jsonl(tmp_path / "old.jsonl", evaluate_linking(mentions, results, toy_kb, seen)[1])
    assert saved_results(tmp_path / "old.jsonl", mentions, sources) is None


def test_tables_show_no_score_for_a_group_without_mentions(toy_kb):
    from angel_trl.evaluation import scores_table

    mentions = [mention("ADA", "C3")]
    seen = TrainingSeen(frozenset({"ada"}), frozenset({"C3"}))  # every mention is of seen text and concept
    metrics, _ = evaluate_linking(mentions, [result("C3")], toy_kb, seen)
    assert metrics["unseen_mentions"] == 0 and metrics["unseen_acc@1"] == 0.0  # the metrics keep the count beside it
    row = scores_table({"test": metrics}).splitlines()[-1]
    assert row == "| test | 1 | 100.0 | 100.0 | 100.0 (1) | - (0) | 100.0 (1) | - (0) |"
    nil_only, _ = evaluate_linking([mention("nothing")], [result("C3")], toy_kb, seen)
    assert scores_table({"test": nil_only}).splitlines()[-1].startswith("| test | 0 | - | - | - (0) |")


def test_a_corpus_whose_gold_ids_are_all_outside_the_kb_is_warned_of(toy_kb, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="angel_trl.evaluation"):
        metrics, _ = evaluate_linking([mention("ADA", "NOPE1"), mention("CF", "NOPE2", start=1)], [result("C3"), result("C5")], toy_kb)
    assert metrics["gold_not_in_kb"] == metrics["evaluated"] == 2
    assert "none of the 2 mentions scored has a gold concept in the KB" in caplog.text
