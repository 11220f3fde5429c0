"""Mean and spread over seeds of several runs' dev / test scores, plus pooled paired tests.

    python benchmarks/seeds_summary.py --out benchmarks/results/ncbi_seeds \
        --arm "stage 1=outputs/ncbi-stage1" \
        --arm "SFT-only control=outputs/ncbi-sft-control,outputs/ncbi-stage2-sft-s43,outputs/ncbi-stage2-sft-s44" \
        --arm "stage 2 (DPO + NLL)=outputs/ncbi-stage2,outputs/ncbi-stage2-dpo-s43,outputs/ncbi-stage2-dpo-s44" \
        --pair "SFT-only control" "stage 2 (DPO + NLL)"

Each run directory holds ``stage{1,2}_results.json`` and ``predictions_{dev,test}.jsonl``; a split
linked later with ``recipes/evaluate.py --output_dir <run>/full-dev`` is read from there. ``--pair A B``
adds, per seed (i-th run of A against the i-th run of B; a single run of A against every run of B),
the exact McNemar test on acc@1.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from angel_trl.data.files import atomic_write_text, write_json
from common import METRICS, paired, run_results, split_scores


def p_text(p: float) -> str:
    """Three decimals, or the order of magnitude when that would print 0.000."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def paired_cell(t: dict | None) -> str:
    return "–" if t is None else f"{t['acc@1_a']:.2f} / {t['acc@1_b']:.2f} ({t['a_only']}, {t['b_only']}, {p_text(t['p_value'])})"


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 2), "sd": round(statistics.stdev(values), 2) if len(values) > 1 else None, "runs": [round(v, 2) for v in values]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", action="append", required=True, metavar="NAME=DIR[,DIR...]")
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    ap.add_argument("--out", required=True, help="Writes OUT.json and OUT.md.")
    args = ap.parse_args()
    arms = {name: dirs.split(",") for name, dirs in (a.split("=", 1) for a in args.arm)}
    report: dict = {"arms": {}, "paired": {}}
    md = ["| run | seeds | dev acc@1 | dev acc@5 | test acc@1 | test acc@5 | test seen | test unseen |", "|---|---|---|---|---|---|---|---|"]
    for name, runs in arms.items():
        entry = {"runs": runs, "seeds": [json.loads((Path(r) / "training_args.json").read_text()).get("seed") for r in runs],
                 # the thread count moves a CPU run's weights; runs written before results recorded it say None
                 "torch_threads": [run_results(r).get("machine", {}).get("torch_threads") for r in runs]}
        for split in ("dev", "test"):
            scores = [split_scores(r, split) for r in runs]
            if all(s is not None for s in scores):  # a run with final_eval_splits [test], never scored on dev later, has no full dev scores
                entry[split] = {m: spread([s[m] for s in scores]) for m in METRICS}
        report["arms"][name] = entry

        def cell(split: str, m: str) -> str:
            if split not in entry:
                return "–"
            v = entry[split][m]
            return f"{v['mean']:.2f}" + (f" ± {v['sd']:.2f}" if v["sd"] is not None else "")

        md.append(f"| {name} | {len(runs)} | {cell('dev', 'acc@1')} | {cell('dev', 'acc@5')} | {cell('test', 'acc@1')} | {cell('test', 'acc@5')} | {cell('test', 'seen_acc@1')} | {cell('test', 'unseen_acc@1')} |")
    md += ["", "Mean ± sample standard deviation over seeds. Paired exact McNemar tests on acc@1, seed by seed:", "", "| A | B | seed run | dev A / B (A only, B only, p) | test A / B (A only, B only, p) |", "|---|---|---|---|---|"]
    for a, b in args.pair:
        rows = []
        runs_a = arms[a] * len(arms[b]) if len(arms[a]) == 1 else arms[a]  # one shared run (e.g. stage 1) against each seed
        for i, (ra, rb) in enumerate(zip(runs_a, arms[b], strict=True)):
            row = {"a": ra, "b": rb, **paired(ra, rb)}
            rows.append(row)
            md.append(f"| {a} | {b} | {i + 1} | {paired_cell(row.get('dev'))} | {paired_cell(row.get('test'))} |")
        report["paired"][f"{a} vs {b}"] = rows
    write_json(f"{args.out}.json", report)
    atomic_write_text(f"{args.out}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
