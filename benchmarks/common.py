"""What the benchmark scripts share: where the real data lives, and reading the runs they compare.

The scripts run as ``python benchmarks/<script>.py``, so benchmarks/ is on ``sys.path`` and they
import this module as ``common``. A run directory holds the training results
(``stage*_results.json``) and ``predictions_<split>.jsonl``; a split not linked in full at the end
of training (``final_eval_splits``) is read from the folder ``recipes/evaluate.py --model_dir <run>
--output_dir <run>/<folder>`` wrote later, when there is exactly one such folder with that split.
"""

from __future__ import annotations

import json
from pathlib import Path

from angel_trl.data.arguments import shared_data_dir
from angel_trl.data.files import read_jsonl_objects
from angel_trl.errors import InputFormatError
from angel_trl.evaluation import mcnemar

# The repository's data folder, ../shared/data beside the repo root ($ANGEL_TRL_DATA overrides it).
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
METRICS = ("acc@1", "acc@5", "seen_acc@1", "unseen_acc@1")


def benchmark_data_dir() -> Path:
    """The folder the real benchmarks are read from: ``$ANGEL_TRL_DATA``, else :data:`REPO_DATA_DIR`."""
    return shared_data_dir(REPO_DATA_DIR)


def run_results(run: str | Path) -> dict:
    """``run``'s training results: its (first) ``stage*_results.json``."""
    found = sorted(Path(run).glob("stage*_results.json"))
    if not found:
        raise FileNotFoundError(f"{run}: no stage*_results.json")
    return json.loads(found[0].read_text())


def split_dir(run: str | Path, split: str) -> Path | None:
    """The folder holding ``run``'s ``predictions_<split>.jsonl``: the run itself, else its one
    subfolder scored later by ``recipes/evaluate.py`` (``eval_results.json`` with that split); None
    when neither has it. Two such subfolders are refused: which one counts would be a guess."""
    run = Path(run)
    if (run / f"predictions_{split}.jsonl").exists():
        return run
    found = [d.parent for d in sorted(run.glob("*/eval_results.json")) if split in json.loads(d.read_text()) and (d.parent / f"predictions_{split}.jsonl").exists()]
    if len(found) > 1:
        raise ValueError(f"{run}: several folders scored {split} ({', '.join(str(d) for d in found)}); keep one")
    return found[0] if found else None


def split_scores(run: str | Path, split: str) -> dict | None:
    """``run``'s scores on ``split`` (acc@1, acc@5, seen / unseen, ...): from its
    ``stage*_results.json``, else from the ``eval_results.json`` of its :func:`split_dir`."""
    scores = run_results(run)
    if split in scores:
        return scores[split]
    folder = split_dir(run, split)
    return None if folder is None else json.loads((folder / "eval_results.json").read_text())[split]


def load_predictions(run: str | Path, split: str) -> list[dict]:
    """``run``'s per-mention predictions on ``split`` (from its :func:`split_dir`); each row needs its
    ``correct@1``."""
    path = split_dir(run, split) / f"predictions_{split}.jsonl"
    rows = []
    for lineno, row in read_jsonl_objects(path):
        if not isinstance(row.get("correct@1"), bool):
            raise InputFormatError(path, lineno, "a prediction row without 'correct@1' (true or false)")
        rows.append(row)
    return rows


def paired(a: str, b: str) -> dict:
    """Per split both runs linked in full (at the end of training or later, see :func:`split_dir`):
    both runs' acc@1 and the McNemar counts and p-value. Runs that share no such split are an error."""
    for run in (a, b):
        if not Path(run).is_dir():
            raise FileNotFoundError(f"{run}: no such run directory")
    out = {}
    for split in ("dev", "test"):
        if any(split_dir(run, split) is None for run in (a, b)):
            continue
        rows_a, rows_b = load_predictions(a, split), load_predictions(b, split)
        acc = [100 * sum(r["correct@1"] for r in rows) / len(rows) for rows in (rows_a, rows_b)]
        out[split] = {"acc@1_a": round(acc[0], 2), "acc@1_b": round(acc[1], 2), **mcnemar(rows_a, rows_b)}
    if not out:
        raise ValueError(f"{a} and {b} share no split linked in full (predictions_dev.jsonl or predictions_test.jsonl in each run, or in one folder recipes/evaluate.py wrote in it)")
    return out
