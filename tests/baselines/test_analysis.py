import pytest

from angel_trl.baselines.analysis import GoldSimilarity, accuracy_by_exact_name, accuracy_by_similarity, bins_table, exact_name_kind, plot_bins
from angel_trl.data.kb import Concept, KnowledgeBase


def test_accuracy_by_similarity_bins_rows():
    rows = [{"correct@1": c} for c in (True, False, True, True, False)]
    sims = [0.05, 0.1, 0.55, 1.0, None]  # None: gold not in the KB, left out
    bins = accuracy_by_similarity(rows, sims)
    assert bins["0.0-0.2"] == {"mentions": 2, "acc@1": 50.0}
    assert bins["0.4-0.6"] == {"mentions": 1, "acc@1": 100.0}
    assert bins["0.8-1.0"] == {"mentions": 1, "acc@1": 100.0}  # 1.0 belongs to the last bin
    assert bins["0.2-0.4"] == {"mentions": 0, "acc@1": None}
    with pytest.raises(ValueError):
        accuracy_by_similarity(rows, sims[:-1])


def test_gold_similarity_and_plot(toy_kb, tmp_path):
    sim = GoldSimilarity(toy_kb)
    assert sim("Lung Cancer", ["C1"]) == pytest.approx(1.0)
    assert 0.0 < sim("lung carcinoma", ["C1"]) < 1.0
    assert sim("lung cancer", ["C5"]) < sim("lung cancer", ["C1"])
    assert sim("anything", ["NOT-IN-KB"]) is None
    by_system = {"a": accuracy_by_similarity([{"correct@1": True}], [0.9]), "b": accuracy_by_similarity([{"correct@1": False}], [0.9])}
    table = bins_table(by_system)
    assert "| 0.8-1.0 | 1 | 100.0 | 0.0 |" in table and "| 0.0-0.2 | 0 | - | - |" in table
    plot_bins(by_system, tmp_path / "bins.png", "toy")
    assert (tmp_path / "bins.png").read_bytes()[:4] == b"\x89PNG"


def test_accuracy_by_exact_name_kinds_and_misses():
    kb = KnowledgeBase([Concept("D1", ["Psychosis", "psychoses"]), Concept("D2", ["ada"], ["OLD2"]), Concept("D3", ["ada", "ada deficiency"])])
    assert exact_name_kind("PSYCHOSIS ", ["D1"], kb) == "name of the gold concept only"
    assert exact_name_kind("ada", ["OLD2"], kb) == "name of the gold concept and others"  # alt id counts as the gold concept
    assert exact_name_kind("ada", ["D2", "D3"], kb) == "name of the gold concept only"  # composite gold owns every owner
    assert exact_name_kind("psychosis", ["D3"], kb) == "name of other concepts only"
    assert exact_name_kind("psychotic", ["D1"], kb) == "not a KB name"
    assert exact_name_kind("psychosis", ["D9"], kb) == "gold concept not in the KB"

    def row(mention, gold, correct, predicted):
        return {"mention": mention, "gold": gold, "correct@1": correct, "predictions": [{"name": predicted}] if predicted else []}

    rows = [row("psychosis", ["D1"], True, "psychosis"), row("Psychosis", ["D1"], False, "ada"), row("psychosis", ["D1"], False, "ada"),
            row("psychotic", ["D1"], False, None), row("ada", ["D3"], True, "ada")]
    out = accuracy_by_exact_name(rows, kb, examples=1)
    gold_only = out["name of the gold concept only"]
    assert (gold_only["mentions"], gold_only["errors"], round(gold_only["acc@1"], 2), round(gold_only["error_share"], 2)) == (3, 2, 33.33, 66.67)
    assert gold_only["top_errors"] == [{"mention": "psychosis", "gold": "D1", "predicted": "ada", "count": 2}]
    assert out["not a KB name"]["top_errors"][0]["predicted"] == "(none)"
    assert out["name of other concepts only"] == {"mentions": 0, "acc@1": None, "errors": 0, "error_share": 0.0, "top_errors": []}
    assert sum(k["mentions"] for k in out.values()) == len(rows)
