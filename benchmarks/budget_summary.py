"""Training runs compared at the CPU time each took: what a model family buys per CPU-minute.

    python benchmarks/budget_summary.py --out benchmarks/results/ncbi_bert2bert_cpu_budget \
        --run "from scratch, small=outputs/cpu-budget-scratch" \
        --run "bert2bert, all-MiniLM-L6-v2 + 2-layer decoder=outputs/cpu-budget-bert2bert" \
        --pair "from scratch, small" "bert2bert, all-MiniLM-L6-v2 + 2-layer decoder"

Each run directory holds ``stage1_results.json`` (its ``train`` block: runtime, rows per second) and
``predictions_test.jsonl``. The table gives per run its parameters, optimizer steps, rows trained,
training minutes, rows per second and test scores; ``--pair A B`` adds the exact McNemar test on
test acc@1. Runs meant to be compared should share a machine and a thread count; ``--command`` (once
per run) records how each was launched in the JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from angel_trl.data.files import atomic_write_text, write_json
from common import paired, run_results, split_scores

COLUMNS = ("acc@1", "acc@5", "seen_acc@1", "unseen_acc@1", "unseen_concept_acc@1")


def run_entry(run: Path) -> dict:
    results = run_results(run)
    args = json.loads((run / "training_args.json").read_text())
    train = results["train"]
    return {
        "dir": str(run),
        "parameters": results.get("parameters"),
        "steps": args.get("max_steps") if args.get("max_steps", -1) > 0 else None,
        "epochs": train.get("epoch"),
        "train_minutes": round(train["train_runtime"] / 60, 1),
        "rows_per_second": train["train_samples_per_second"],
        "rows_trained": round(train["train_runtime"] * train["train_samples_per_second"]),
        "learning_rate": args.get("learning_rate"),
        "test": split_scores(run, "test"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    ap.add_argument("--command", action="append", default=[], help="How a run was launched (kept in the JSON).")
    ap.add_argument("--out", required=True, help="Writes OUT.json and OUT.md.")
    args = ap.parse_args()
    runs = {name: Path(d) for name, d in (r.split("=", 1) for r in args.run)}
    report = {"commands": args.command, "runs": {name: run_entry(d) for name, d in runs.items()}, "paired": {}}
    md = [
        "| run | parameters | epochs | rows trained | train time | rows / s | learning rate | " + " | ".join(f"test {c}" for c in COLUMNS) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, e in report["runs"].items():
        scores = [f"{e['test'][c]:.1f}" if c in e["test"] else "-" for c in COLUMNS]
        md.append(
            f"| {name} | {e['parameters'] / 1e6:.1f}M | {e['epochs']:.2f} | {e['rows_trained']:,} | {e['train_minutes']:.0f} min | "
            f"{e['rows_per_second']:.1f} | {e['learning_rate']:g} | " + " | ".join(scores) + " |"
        )
    if args.pair:
        md += ["", "Exact McNemar test on test acc@1:", "", "| A | B | A / B | A only | B only | p |", "|---|---|---|---|---|---|"]
    for a, b in args.pair:
        test = paired(runs[a], runs[b])["test"]
        report["paired"][f"{a} vs {b}"] = test
        md.append(f"| {a} | {b} | {test['acc@1_a']:.2f} / {test['acc@1_b']:.2f} | {test['a_only']} | {test['b_only']} | {test['p_value']:.2g} |")
    write_json(Path(f"{args.out}.json"), report)
    atomic_write_text(Path(f"{args.out}.md"), "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
