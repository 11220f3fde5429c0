"""Exact McNemar test on acc@1 between any two rows of one benchmark result file.

    python benchmarks/pair_rows.py benchmarks/results/ncbi_hybrid_negatives.json \
        "angel-trl stage 2, beam negatives (paper rule), seed 42, hybrid" "dense MiniLM-L6" --protocol "KB + train"

The benchmark pairs one angel-trl row with one peer row (the best of each on test); a row chosen
another way (on dev, say) is paired here from the per-mention acc@1 the result file keeps
(``correct@1``; files written before it have none).
"""

import argparse
import json

from angel_trl.baselines.benchmark import paired_from_report
from angel_trl.data.files import read_json_object


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", help="A benchmark result file (<results_dir>/<name>.json).")
    ap.add_argument("row_a")
    ap.add_argument("row_b")
    ap.add_argument("--protocol", default="KB + train", help="The rows' dictionary protocol as the result names it (KB, KB + train).")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    try:
        print(json.dumps(paired_from_report(read_json_object(args.result), args.row_a, args.row_b, args.protocol, args.split), indent=2))
    except (OSError, ValueError, KeyError) as e:  # InputFormatError is a ValueError
        ap.exit(2, f"pair_rows.py: error: {e}\n")


if __name__ == "__main__":
    main()
