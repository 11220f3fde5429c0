"""Exact McNemar test between two runs' per-mention predictions (predictions_{dev,test}.jsonl).

    python benchmarks/paired_test.py outputs/ncbi-sft-control outputs/ncbi-stage2

A split a run did not link in full at the end of training (``final_eval_splits``) is read from the
folder ``recipes/evaluate.py --model_dir <run> --output_dir <run>/<folder>`` wrote later, when
there is exactly one such folder with that split.
"""

import json
import sys
from pathlib import Path

from angel_trl.evaluation import mcnemar


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
    found = sorted(Path(run).glob("stage*_results.json"))
    if not found:
        raise FileNotFoundError(f"{run}: no stage*_results.json")
    scores = json.loads(found[0].read_text())
    if split in scores:
        return scores[split]
    folder = split_dir(run, split)
    return None if folder is None else json.loads((folder / "eval_results.json").read_text())[split]


def load(run: str | Path, split: str) -> list[dict]:
    with open(split_dir(run, split) / f"predictions_{split}.jsonl") as f:
        return [json.loads(line) for line in f]


def paired(a: str, b: str) -> dict:
    """Per split both runs linked in full (at the end of training or later, see :func:`split_dir`):
    both runs' acc@1 and the McNemar counts and p-value."""
    out = {}
    for split in ("dev", "test"):
        if any(split_dir(run, split) is None for run in (a, b)):
            continue
        rows_a, rows_b = load(a, split), load(b, split)
        acc = [100 * sum(r["correct@1"] for r in rows) / len(rows) for rows in (rows_a, rows_b)]
        out[split] = {"acc@1_a": round(acc[0], 2), "acc@1_b": round(acc[1], 2), **mcnemar(rows_a, rows_b)}
    return out


def main() -> None:
    a, b = sys.argv[1:3]
    print(json.dumps({"a": a, "b": b, **paired(a, b)}, indent=2))


if __name__ == "__main__":
    main()
