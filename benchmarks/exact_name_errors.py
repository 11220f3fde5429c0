"""Where angel-trl runs go wrong relative to exact KB names, from the predictions their runs saved.

    python benchmarks/exact_name_errors.py --dataset bc5cdr-disease \
        --run "stage 1=outputs/bc5cdr-disease-stage1-from-medic-pt2ep" \
        --run "stage 2 (DPO + NLL)=outputs/bc5cdr-disease-stage2-from-pt2ep-dpo-s42"

Each mention of the split is one of: the (normalised) name of its gold concept only, of the gold
concept and others, of other concepts only (annotation and KB disagree: exact match cannot be right),
or not a KB name. Per kind and run: mentions, acc@1, errors and their share of all errors, and the
most frequent misses. Writes ``<results_dir>/<dataset>_<split>_exact_name_errors.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from angel_trl.baselines.analysis import EXACT_NAME_KINDS, accuracy_by_exact_name
from angel_trl.data.arguments import BENCHMARKS, benchmark_data
from angel_trl.data.files import atomic_write_text, read_jsonl_objects, write_json
from common import REPO_DATA_DIR, split_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(BENCHMARKS), required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--run", action="append", required=True, metavar="NAME=DIR", help="A run directory with predictions_<split>.jsonl (repeatable).")
    ap.add_argument("--examples", type=int, default=10, help="Most frequent misses listed per kind and run.")
    ap.add_argument("--results-dir", default="benchmarks/results")
    args = ap.parse_args()

    kb = benchmark_data(args.dataset, REPO_DATA_DIR).load_kb()
    runs = dict(spec.split("=", 1) for spec in args.run)
    report: dict = {"dataset": args.dataset, "split": args.split, "command": " ".join([Path(sys.executable).name, *sys.argv]), "runs": {}}
    for name, run in runs.items():
        folder = split_dir(run, args.split)
        if folder is None:
            raise SystemExit(f"{run}: no predictions_{args.split}.jsonl (link the split with recipes/evaluate.py first)")
        path = folder / f"predictions_{args.split}.jsonl"
        rows = [row for _, row in read_jsonl_objects(path)]
        report["runs"][name] = {"predictions": str(path), "by_kind": accuracy_by_exact_name(rows, kb, args.examples)}

    names = list(runs)
    md = [f"# {args.dataset} {args.split}: acc@1 by whether the mention is an exact KB name", "", f"Command: `{report['command']}`", "",
          "Cells: acc@1 (errors, share of the run's errors).", "",
          "| mention is | mentions | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for kind in EXACT_NAME_KINDS:
        n = report["runs"][names[0]]["by_kind"][kind]["mentions"]
        cells = []
        for name in names:
            k = report["runs"][name]["by_kind"][kind]
            cells.append("–" if k["acc@1"] is None else f"{k['acc@1']:.1f} ({k['errors']}, {k['error_share']:.0f}%)")
        md.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    for name in names:
        md += ["", f"## {name}: most frequent misses", "", "| mention is | mention | gold | predicted | times |", "|---|---|---|---|---|"]
        for kind in EXACT_NAME_KINDS:
            md += [f"| {kind} | {e['mention']} | {e['gold']} | {e['predicted']} | {e['count']} |" for e in report["runs"][name]["by_kind"][kind]["top_errors"]]
    out = Path(args.results_dir) / f"{args.dataset}_{args.split}_exact_name_errors"
    write_json(out.with_suffix(".json"), report)
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md[:12 + len(EXACT_NAME_KINDS)]))


if __name__ == "__main__":
    main()
