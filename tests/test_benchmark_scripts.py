"""The seed summaries in benchmarks/ read a split linked after training from the run's evaluate.py folder."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from paired_test import paired, split_dir, split_scores  # noqa: E402


def write_run(run: Path, correct: dict[str, list[int]], later: dict[str, list[int]] | None = None) -> None:
    """A run scored on ``correct``'s splits at the end of training and on ``later``'s in ``run/full-dev``."""

    def write(folder: Path, results_file: str, splits: dict[str, list[int]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        scores = {}
        for split, flags in splits.items():
            rows = [{"mention_id": f"m{i}", "correct@1": bool(c)} for i, c in enumerate(flags)]
            (folder / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            scores[split] = {"acc@1": 100 * sum(flags) / len(flags)}
        (folder / results_file).write_text(json.dumps(scores))

    write(run, "stage2_results.json", correct)
    if later:
        write(run / "full-dev", "eval_results.json", later)


def test_split_linked_later_is_read_from_its_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, {"test": [1, 0, 0, 1]}, later={"dev": [1, 1, 0, 0]})
    write_run(b, {"test": [1, 1, 1, 1]}, later={"dev": [1, 1, 1, 0]})
    assert split_dir(a, "test") == a and split_dir(a, "dev") == a / "full-dev"
    assert split_scores(a, "dev") == {"acc@1": 50.0} and split_scores(a, "test") == {"acc@1": 50.0}
    result = paired(str(a), str(b))
    assert (result["dev"]["a_only"], result["dev"]["b_only"], result["dev"]["acc@1_b"]) == (0, 1, 75.0)
    assert (result["test"]["a_only"], result["test"]["b_only"]) == (0, 2)


def test_split_never_linked_is_absent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, {"test": [1, 0]})
    write_run(b, {"test": [1, 1]}, later={"dev": [1, 0]})
    assert split_dir(a, "dev") is None and split_scores(a, "dev") is None
    assert set(paired(str(a), str(b))) == {"test"}


def test_two_folders_with_the_same_split_are_refused(tmp_path):
    run = tmp_path / "run"
    write_run(run, {"test": [1]}, later={"dev": [1]})
    other = run / "full-dev-again"
    other.mkdir()
    for name in ("eval_results.json", "predictions_dev.jsonl"):
        (other / name).write_text((run / "full-dev" / name).read_text())
    with pytest.raises(ValueError, match="several folders scored dev"):
        split_dir(run, "dev")


def accuracy_result(models: list[str], scores: dict[str, dict[str, float]]) -> dict:
    """An accuracy.py result: ``scores`` maps system -> protocol -> acc@1 (seen = acc + 10, unseen = acc - 10)."""
    splits = {s: {p: {"acc@1": a, "seen_acc@1": a + 10, "unseen_acc@1": a - 10} for p, a in by_p.items()} for s, by_p in scores.items()}
    return {"command": "python benchmarks/accuracy.py", "machine": {"cpus": 2, "gpu": None}, "models": {m: {} for m in models}, "splits": {"test": splits}}


def test_report_lays_out_accuracy_gaps_and_speed_goals(tmp_path):
    from report import build_report

    ncbi = accuracy_result(["ours"], {"TF-IDF": {"KB": 60.0, "KB + train": 80.0}, "ours": {"KB": 70.0, "KB + train": 71.0}, "ours + exact match first": {"KB + train": 78.5}})
    (tmp_path / "ncbi.json").write_text(json.dumps(ncbi))
    speed = {"machine": "x86_64 2 cores, torch threads 2, device cpu", "names_in_trie": 10, "decoding": {"num_beams": 5, "constrained_over_unconstrained_time": 1.3, "batched_over_bs1_speedup": 2.0}, "training": {"dpo_precomputed_over_stage1_step": 1.9}}
    (tmp_path / "speed_cpu.json").write_text(json.dumps(speed))
    report = build_report(tmp_path)
    assert "| ours | **70.0 (80.0 / 60.0)** |" in report  # best of its column under KB
    assert "| TF-IDF | **80.0 (90.0 / 70.0)** |" in report
    # the best angel-trl system (exact match first counts as ours) against the best peer, per protocol
    assert "| NCBI | KB | ours: 70.0 | TF-IDF: 60.0 | +10.0 (+10.0 / +10.0) |" in report
    assert "| NCBI | KB + train | ours + exact match first: 78.5 | TF-IDF: 80.0 | -1.5 (-1.5 / -1.5) |" in report
    assert "| 1.30x | not met | speed_cpu.json |" in report and "| 1.90x | met | speed_cpu.json |" in report
    assert "| 2.00x | CPU: context only |" in report and "not measured (no GPU run" in report
    assert "BC5CDR" not in report.split("## Speed")[0].split("### Best")[0]  # absent datasets get no column
