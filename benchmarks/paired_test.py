"""Exact McNemar test between two runs' per-mention predictions (predictions_{dev,test}.jsonl).

    python benchmarks/paired_test.py outputs/ncbi-sft-control outputs/ncbi-stage2

A split a run did not link in full at the end of training (``final_eval_splits``) is read from the
folder ``recipes/evaluate.py --model_dir <run> --output_dir <run>/<folder>`` wrote later, when
there is exactly one such folder with that split (:func:`common.split_dir`).
"""

import argparse
import json

from common import paired



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a", help="A run directory (the first of the pair).")
    ap.add_argument("run_b", help="Another run directory, linked on the same mentions.")
    args = ap.parse_args()
    try:
        result = paired(args.run_a, args.run_b)
    except (OSError, ValueError) as e:  # InputFormatError is a ValueError
        ap.exit(2, f"paired_test.py: error: {e}\n")
    print(json.dumps({"a": args.run_a, "b": args.run_b, **result}, indent=2))


if __name__ == "__main__":
    main()
