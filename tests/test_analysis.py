import pytest

from angel_trl.analysis import GoldSimilarity, accuracy_by_similarity, bins_table, plot_bins


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
