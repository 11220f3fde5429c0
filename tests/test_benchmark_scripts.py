"""The benchmark scripts' shared helpers (benchmarks/common.py): a split linked after training is read
from the run's evaluate.py folder, and the real data folder is the repo's unless $ANGEL_TRL_DATA says otherwise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import REPO_DATA_DIR, benchmark_data_dir, paired, split_dir, split_scores  # noqa: E402

from angel_trl.data.arguments import DATA_DIR_ENV, DataArguments, benchmark_data, resolve_data_path  # noqa: E402


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


def test_report_gives_the_zero_shot_protocol_its_own_section(tmp_path):
    from report import build_report

    standard = accuracy_result(["ours"], {"TF-IDF": {"KB + train": 80.0}, "ours": {"KB + train": 82.0}})
    zero_shot = accuracy_result(["ours"], {"TF-IDF": {"KB + train": 60.0}, "ours": {"KB + train": 40.0}})
    (tmp_path / "ncbi.json").write_text(json.dumps(standard))
    (tmp_path / "ncbi_zeroshot.json").write_text(json.dumps(zero_shot))
    report = build_report(tmp_path)
    before, section = report.split("## Zero-shot protocol", 1)
    assert "| NCBI | KB + train | ours: 82.0 | TF-IDF: 80.0 | +2.0" in before and "40.0" not in before
    assert "| NCBI | KB + train | ours: 40.0 | TF-IDF: 60.0 | -20.0" in section
    assert "`ncbi_zeroshot.json`" in section.split("## Sources")[1]


def test_report_gap_leaves_out_the_hybrids_ablation_rows(tmp_path):
    from report import build_report

    result = accuracy_result(
        ["ours"],
        {"dense": {"KB + train": 64.0}, "ours, hybrid": {"KB + train": 63.0}, "ours, hybrid [model score only]": {"KB + train": 66.0}},
    )
    (tmp_path / "ncbi.json").write_text(json.dumps(result))
    gap = build_report(tmp_path).split("### Best angel-trl system against the best peer", 1)[1].split("\n\n", 2)[1]
    # the dev-chosen hybrid against the peer: an ablation row is neither the best angel-trl system nor a peer
    assert "| NCBI | KB + train | ours, hybrid: 63.0 | dense: 64.0 | -1.0" in gap and "[model score only]" not in gap


def test_report_gap_gives_the_benchmarks_paired_test_of_the_same_two_rows(tmp_path):
    from report import build_report

    result = accuracy_result(["ours"], {"dense": {"KB": 60.0, "KB + train": 64.0}, "ours": {"KB": 70.0, "KB + train": 63.0}})
    # Rows say whose they are: a model named like a peer row's suffix is still ours.
    result["systems"] = {"dense": "peer", "ours": "angel-trl"}
    result["paired"] = {"test": {"KB + train": {"angel-trl": "ours", "peer": "dense", "a_only": 3, "b_only": 4, "p_value": 1.0},
                                 "KB": {"angel-trl": "ours", "peer": "TF-IDF", "a_only": 9, "b_only": 0, "p_value": 0.004}}}
    (tmp_path / "ncbi.json").write_text(json.dumps(result))
    gap = build_report(tmp_path).split("### Best angel-trl system against the best peer", 1)[1].split("\n\n", 2)[1]
    assert "| NCBI | KB + train | ours: 63.0 | dense: 64.0 | -1.0 (-1.0 / -1.0) | 1 (3 vs 4) |" in gap
    assert "| NCBI | KB | ours: 70.0 | dense: 60.0 | +10.0 (+10.0 / +10.0) | - |" in gap  # a test of other rows is not shown


def test_report_gap_adds_the_hybrid_row_dev_picks_where_the_benchmark_paired_it(tmp_path):
    from report import build_report

    result = accuracy_result(["a", "b"], {"dense": {"KB + train": 64.0}, "a, hybrid": {"KB + train": 65.0}, "b, hybrid": {"KB + train": 63.0}})
    result["systems"] = {"dense": "peer", "a, hybrid": "angel-trl", "b, hybrid": "angel-trl"}
    # dev's folds picked b's hybrid, the worse one on test: the report must say so beside the test-best row
    result["paired_dev_chosen"] = {"test": {"KB + train": {"angel-trl": "b, hybrid", "peer": "dense", "dev_folds_acc1": {"a, hybrid": 80.0, "b, hybrid": 81.0}, "a_only": 2, "b_only": 7, "p_value": 0.18}}}
    (tmp_path / "ncbi.json").write_text(json.dumps(result))
    gap = build_report(tmp_path).split("### Best angel-trl system against the best peer", 1)[1].split("\n\n", 2)[1]
    assert "| NCBI | KB + train | a, hybrid: 65.0 | dense: 64.0 | +1.0 (+1.0 / +1.0) | - |" in gap
    assert "| NCBI | KB + train | dev-chosen hybrid: b, hybrid: 63.0 | dense: 64.0 | -1.0 (-1.0 / -1.0) | 0.18 (2 vs 7) |" in gap
    # where dev picks the test-best row itself, no second line repeats it
    result["paired_dev_chosen"]["test"]["KB + train"]["angel-trl"] = "a, hybrid"
    (tmp_path / "ncbi.json").write_text(json.dumps(result))
    assert "dev-chosen" not in build_report(tmp_path)


def test_row_kinds_from_names_and_the_best_of_each_side():
    from angel_trl.baselines.comparison import ABLATION, ANGEL, PEER, best_of_each_side, kinds_from_names

    kinds = kinds_from_names(["TF-IDF", "m", "m + exact match first", "m, hybrid", "m, hybrid [model score only]", "mx"], ["m"])
    assert kinds == {"TF-IDF": PEER, "m": ANGEL, "m + exact match first": ANGEL, "m, hybrid": ANGEL, "m, hybrid [model score only]": ABLATION, "mx": PEER}
    scores = {"TF-IDF": {"acc@1": 60.0}, "mx": {"acc@1": 60.0}, "m": {"acc@1": 50.0}, "m, hybrid": {"acc@1": 55.0}, "m, hybrid [model score only]": {"acc@1": 99.0}}
    assert best_of_each_side(scores, kinds) == ("m, hybrid", "TF-IDF")  # ablation rows left out; a tie goes to the first row
    assert best_of_each_side({"TF-IDF": {"acc@1": 1.0}}, kinds) == (None, "TF-IDF")


def test_data_dir_is_the_environment_else_the_one_given(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_path("{data_dir}/kb.txt", tmp_path) == f"{tmp_path}/kb.txt"
    assert benchmark_data_dir() == REPO_DATA_DIR
    assert resolve_data_path("plain/kb.txt") == "plain/kb.txt" and resolve_data_path(None) is None  # no {data_dir}: nothing needed
    with pytest.raises(ValueError, match=f"set \\${DATA_DIR_ENV}, or data_dir"):
        DataArguments(kb_path="{data_dir}/kb.jsonl").load_kb()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_path("{data_dir}/kb.txt", tmp_path) == f"{tmp_path}/env/kb.txt"
    assert benchmark_data_dir() == tmp_path / "env"


def test_benchmark_data_reads_the_data_dir_it_is_given(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/ncbi-disease/NCBItestset_corpus.txt"):
        benchmark_data("ncbi", tmp_path)
    for name in ("kb/medic/medic_06Jul2012.txt", "ncbi-disease/NCBItestset_corpus.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    data = benchmark_data("ncbi", tmp_path)
    assert data.data_dir == str(tmp_path) and data.resolve(data.test_file) == f"{tmp_path}/ncbi-disease/NCBItestset_corpus.txt"


def test_budget_summary_tables_runs_by_the_cpu_time_they_took(tmp_path, monkeypatch, capsys):
    import budget_summary

    dirs = {}
    for name, flags, runtime, rate, steps in (("a", [1, 1, 1, 0], 600.0, 20.0, -1), ("b", [1, 0, 0, 0], 900.0, 4.0, 50)):
        run = dirs[name] = tmp_path / name
        run.mkdir()
        rows = [{"mention_id": f"m{i}", "correct@1": bool(c)} for i, c in enumerate(flags)]
        (run / "predictions_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        acc = 100 * sum(flags) / len(flags)
        test = {"acc@1": acc, "acc@5": acc, "seen_acc@1": acc, "unseen_acc@1": acc}
        (run / "stage1_results.json").write_text(json.dumps({"parameters": 2_000_000, "train": {"train_runtime": runtime, "train_samples_per_second": rate, "epoch": 1.0}, "test": test}))
        (run / "training_args.json").write_text(json.dumps({"max_steps": steps, "learning_rate": 1e-3}))
    out = tmp_path / "summary"
    monkeypatch.setattr(sys, "argv", ["budget_summary.py", "--out", str(out), "--run", f"a={dirs['a']}", "--run", f"b={dirs['b']}", "--pair", "a", "b"])
    budget_summary.main()
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["runs"]["a"]["rows_trained"] == 12_000 and report["runs"]["b"]["train_minutes"] == 15.0 and report["runs"]["b"]["steps"] == 50
    assert report["paired"]["a vs b"]["a_only"] == 2 and report["paired"]["a vs b"]["b_only"] == 0
    md = out.with_suffix(".md").read_text()
    assert "| a | 2.0M | 1.00 | 12,000 | 10 min | 20.0 | 0.001 | 75.0 | 75.0 | 75.0 | 75.0 | - |" in md  # no concept split in this file: '-'
    assert "| a | b | 75.00 / 25.00 | 2 | 0 | 0.5 |" in md


def test_seeds_summary_says_each_runs_thread_count(tmp_path, monkeypatch):
    import seeds_summary

    runs = []
    for seed, flags, machine in ((42, [1, 1, 0, 0], {"torch_threads": 1}), (43, [1, 1, 1, 0], None)):
        run = tmp_path / f"s{seed}"
        write_run(run, {"test": flags})
        results = json.loads((run / "stage2_results.json").read_text())
        results["test"] = {m: results["test"]["acc@1"] for m in ("acc@1", "acc@5", "seen_acc@1", "unseen_acc@1")}
        if machine:  # a run written before the results recorded their machine has none
            results["machine"] = machine
        (run / "stage2_results.json").write_text(json.dumps(results))
        (run / "training_args.json").write_text(json.dumps({"seed": seed}))
        runs.append(str(run))
    out = tmp_path / "summary"
    monkeypatch.setattr(sys, "argv", ["seeds_summary.py", "--out", str(out), "--arm", f"dpo={','.join(runs)}"])
    seeds_summary.main()
    arm = json.loads(out.with_suffix(".json").read_text())["arms"]["dpo"]
    assert arm["seeds"] == [42, 43] and arm["torch_threads"] == [1, None]


def test_report_gives_a_tagged_run_and_its_abbreviations_twin_a_section_each(tmp_path):
    from report import TAGGED_RUNS, build_report

    tag, title, gap_title = TAGGED_RUNS[0]
    (tmp_path / f"ncbi_{tag}.json").write_text(json.dumps(accuracy_result(["ours"], {"TF-IDF": {"KB + train": 80.0}, "ours": {"KB + train": 81.0}})))
    (tmp_path / f"ncbi_abbreviations_{tag}.json").write_text(json.dumps(accuracy_result(["ours"], {"TF-IDF": {"KB + train": 85.0}, "ours": {"KB + train": 84.0}})))
    report = build_report(tmp_path)
    run, twin = report.split(f"## {title}, with abbreviations expanded", 1)
    assert f"## {title}\n" in run and "| NCBI | KB + train | ours: 81.0 | TF-IDF: 80.0 | +1.0" in run and "84.0" not in run
    assert f"### Best angel-trl system against the best peer, {gap_title}, abbreviations expanded" in twin
    assert "| NCBI | KB + train | ours: 84.0 | TF-IDF: 85.0 | -1.0" in twin
    assert f"`ncbi_abbreviations_{tag}.json`" in twin.split("## Sources")[1]


def _candidates_file(path: Path, rows: list[tuple[str, list[str], list[dict[str, float]]]]) -> None:
    """A hybrid candidates file: per mention, its text, candidate concepts and their named features."""
    from angel_trl.hybrid.linker import FEATURES

    lines = [json.dumps({"format": "angel-trl-hybrid-candidates", "version": 1, "features": list(FEATURES), "config": {}, "mentions": len(rows)})]
    for text, ids, feats in rows:
        lines.append(json.dumps({"mention": text, "beam_candidates": [], "beam": [], "concept_ids": ids, "names": ids, "features": [[f.get(n, 0.0) for n in FEATURES] for f in feats]}))
    path.write_text("\n".join(lines) + "\n")


def test_unseen_concept_shift_scores_each_source_and_the_hybrid_by_concept_seen(tmp_path):
    from unseen_concept_shift import model_scores, read_rows

    from angel_trl.data.corpus import Mention
    from angel_trl.errors import InputFormatError
    from angel_trl.evaluation import TrainingSeen

    class KB:  # every id is its own canonical id
        def canonical_id(self, cid):
            return cid

    kb = KB()
    seen = TrainingSeen.of([Mention("t", 0, 1, "a", ("A",))], kb)  # training carries concept A only
    # dev: eight documents; the model's best candidate is the gold one on each, dense's on none
    dev = [Mention(f"d{i}", 0, 1, text, (gold,)) for i, (text, gold) in enumerate([("a", "A"), ("b", "B"), ("a2", "A"), ("b2", "B")] * 2)]
    right_model = [{"model": -1.0, "dense": 0.2}, {"model": -3.0, "dense": 0.9}]  # candidates A, B
    test = [Mention("x", 0, 1, "a", ("A",)), Mention("y", 0, 1, "b", ("B",)), Mention("z", 0, 1, "n", ())]  # the NIL one is left out
    _candidates_file(tmp_path / "dev-fit.jsonl", [(m.text, ["A", "B"], right_model if m.ids == ("A",) else right_model[::-1]) for m in dev])
    _candidates_file(tmp_path / "test.jsonl", [("a", ["A", "B"], right_model), ("b", ["A", "C"], [{"model": -1.0, "dense": 0.9}, {"model": -2.0}]), ("n", ["A"], [{}])])
    gold = {"dev": [list(m.ids) for m in dev], "test": [list(m.ids) for m in test]}
    scores = model_scores(tmp_path, {"dev": dev, "test": test}, gold, seen, kb)
    assert scores["test"]["mentions"] == {"all": 2, "seen_concept": 1, "unseen_concept": 1}
    assert scores["test"]["model"] == {"all": 50.0, "seen_concept": 100.0, "unseen_concept": 0.0}
    assert scores["test"]["gold among candidates"] == {"all": 50.0, "seen_concept": 100.0, "unseen_concept": 0.0}  # B is not a candidate of "b"
    assert scores["dev"]["model"]["unseen_concept"] == 100.0 and scores["dev"]["dense"]["all"] == 0.0
    assert scores["dev"]["hybrid"]["all"] == 100.0 and scores["test"]["hybrid"] == {"all": 50.0, "seen_concept": 100.0, "unseen_concept": 0.0}
    # "b" (gold B) is the one mention no ranker can reach: outside the candidates, and short
    assert scores["test"]["misses"] == {"gold_not_in_kb": 0, "gold_outside_candidates": 1, "short_outside_candidates": 1, "most_frequent": [("b", 1)]}
    assert scores["dev"]["misses"]["gold_outside_candidates"] == 0
    # a file of another split is refused with its line
    with pytest.raises(InputFormatError, match=r"test.jsonl:2: mention 'a' where the split has 'other'"):
        read_rows(tmp_path / "test.jsonl", [Mention("x", 0, 1, "other", ("A",)), *test[1:]])


def test_paired_runs_and_result_files_that_cannot_be_read_are_named(tmp_path):
    from angel_trl.data.files import read_json_object
    from angel_trl.errors import InputFormatError

    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, {"test": [1, 0]})
    write_run(b, {"dev": [1, 1]})
    with pytest.raises(FileNotFoundError, match="absent: no such run directory"):
        paired(str(a), str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="share no split linked in full"):
        paired(str(a), str(b))
    write_run(b, {"test": [1, 1]})
    with (b / "predictions_test.jsonl").open("a") as f:
        f.write('{"mention_id": "m2", "correct@1": tr\n')
    with pytest.raises(InputFormatError, match=r"predictions_test.jsonl:3: invalid JSON"):
        paired(str(a), str(b))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputFormatError, match=r"list.json: expected a JSON object, not a JSON list"):
        read_json_object(tmp_path / "list.json")
    (tmp_path / "cut.json").write_text('{"a": ')
    with pytest.raises(InputFormatError, match=r"cut.json:1: not valid JSON"):
        read_json_object(tmp_path / "cut.json")


@pytest.mark.parametrize("script", sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.sh")), ids=lambda p: p.name)
def test_every_benchmark_shell_script_parses(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_candidate_misses_count_gold_outside_the_kb_and_outside_the_candidates_apart():
    from unseen_concept_shift import candidate_misses

    from angel_trl.data.corpus import Mention

    class KB:  # "OLD" is an id the KB no longer has
        def canonical_id(self, cid):
            return None if cid == "OLD" else cid

    texts_and_gold = [("STZ", ["OLD"]), ("Viracept brand", ["X"]), ("Pb", ["Y"]), ("PB", ["Z"]), ("n", [])]
    mentions = [Mention(f"d{i}", 0, 1, text, tuple(ids)) for i, (text, ids) in enumerate(texts_and_gold)]
    rows = [{"concept_ids": ids} for ids in (["A"], ["B"], ["Y"], ["Y"], [])]
    misses = candidate_misses(mentions, rows, [ids for _, ids in texts_and_gold], KB())
    # STZ: the KB lacks its gold (not a candidate miss); Pb: found; the NIL one: left out
    assert misses == {"gold_not_in_kb": 1, "gold_outside_candidates": 2, "short_outside_candidates": 1, "most_frequent": [("viracept brand", 1), ("pb", 1)]}
