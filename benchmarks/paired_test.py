"""Exact McNemar test between two runs' per-mention predictions (predictions_{dev,test}.jsonl).

    python benchmarks/paired_test.py outputs/ncbi-sft-control outputs/ncbi-stage2

A split a run did not link in full at the end of training (``final_eval_splits``) is read from the
folder ``recipes/evaluate.py --model_dir <run> --output_dir <run>/<folder>`` wrote later, when
there is exactly one such folder with that split (:func:`common.split_dir`).
"""

import json
import sys

from common import paired


def main() -> None:
    a, b = sys.argv[1:3]
    print(json.dumps({"a": a, "b": b, **paired(a, b)}, indent=2))


if __name__ == "__main__":
    main()
