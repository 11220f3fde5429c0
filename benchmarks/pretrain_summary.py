"""Zero-shot test scores of KB pre-trained linkers, one row per model, one column group per dataset.

    python benchmarks/pretrain_summary.py --out benchmarks/results/medic_pretrain_2ep_zeroshot \
        --run "(a) positive-only=outputs/medic-pretrain-2ep" --run "(b) + negative-aware=outputs/medic-pretrain-2ep-dpo" \
        --pair "(a) positive-only" "(b) + negative-aware"

Each run directory holds the training results (``stage*_results.json``) and one ``zeroshot-<dataset>/``
folder per dataset written by ``recipes/evaluate.py`` (``benchmarks/medic_pretrain.sh`` lays them out).
``--pair A B`` adds the exact McNemar test on test acc@1, per dataset both were scored on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from angel_trl.evaluation import mcnemar
from angel_trl.data.files import atomic_write_text, write_json
from common import METRICS, load_predictions, run_results


def zero_shot_scores(run: Path) -> dict[str, dict]:
    """``{dataset: test scores}`` from the run's ``zeroshot-<dataset>/eval_results.json`` files."""
    found = sorted(run.glob("zeroshot-*/eval_results.json"))
    if not found:
        raise FileNotFoundError(f"{run}: no zeroshot-<dataset>/eval_results.json (run recipes/evaluate.py first)")
    return {f.parent.name.removeprefix("zeroshot-"): json.loads(f.read_text())["test"] for f in found}


def training(run: Path) -> dict:
    return {"train": run_results(run).get("train"), "seed": json.loads((run / "training_args.json").read_text()).get("seed")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    ap.add_argument("--out", required=True, help="Writes OUT.json and OUT.md.")
    args = ap.parse_args()
    runs = {name: Path(d) for name, d in (r.split("=", 1) for r in args.run)}
    report = {name: {"dir": str(d), **training(d), "zero_shot_test": zero_shot_scores(d)} for name, d in runs.items()}
    datasets = sorted({ds for entry in report.values() for ds in entry["zero_shot_test"]})
    md = [
        "| model | train time | " + " | ".join(f"{ds} {m}" for ds in datasets for m in METRICS) + " |",
        "|---|---|" + "---|" * (len(datasets) * len(METRICS)),
    ]
    for name, entry in report.items():
        runtime = (entry["train"] or {}).get("train_runtime")
        cells = [f"{entry['zero_shot_test'][ds][m]:.2f}" if ds in entry["zero_shot_test"] and m in entry["zero_shot_test"][ds] else "-" for ds in datasets for m in METRICS]
        md.append(f"| {name} | {f'{runtime / 60:.0f} min' if runtime else '-'} | " + " | ".join(cells) + " |")
    md += ["", "Zero-shot: no annotated mention was trained on; seen / unseen split by each dataset's training mentions."]
    paired = {}
    if args.pair:
        md += ["", "Exact McNemar test on test acc@1:", "", "| A | B | dataset | A / B | A only | B only | p |", "|---|---|---|---|---|---|---|"]
    for a, b in args.pair:
        for ds in datasets:
            if ds not in report[a]["zero_shot_test"] or ds not in report[b]["zero_shot_test"]:
                continue
            test = mcnemar(load_predictions(runs[a] / f"zeroshot-{ds}", "test"), load_predictions(runs[b] / f"zeroshot-{ds}", "test"))
            paired[f"{a} vs {b}: {ds}"] = test
            acc_a, acc_b = report[a]["zero_shot_test"][ds]["acc@1"], report[b]["zero_shot_test"][ds]["acc@1"]
            md.append(f"| {a} | {b} | {ds} | {acc_a:.2f} / {acc_b:.2f} | {test['a_only']} | {test['b_only']} | {test['p_value']:.3f} |")
    write_json(f"{args.out}.json", {"runs": report, "paired": paired})
    atomic_write_text(f"{args.out}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
