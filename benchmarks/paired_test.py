"""Exact McNemar test between two runs' per-mention predictions (predictions_{dev,test}.jsonl).

    python benchmarks/paired_test.py outputs/ncbi-sft-control outputs/ncbi-stage2
"""

import json
import sys
from pathlib import Path

from angel_trl.evaluation import mcnemar


def load(run: str, split: str) -> list[dict]:
    with open(Path(run) / f"predictions_{split}.jsonl") as f:
        return [json.loads(line) for line in f]


def paired(a: str, b: str) -> dict:
    """Per split both runs linked in full (``final_eval_splits``): both runs' acc@1 and the McNemar counts and p-value."""
    out = {}
    for split in ("dev", "test"):
        if not all((Path(run) / f"predictions_{split}.jsonl").exists() for run in (a, b)):
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
