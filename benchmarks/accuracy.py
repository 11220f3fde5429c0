"""Accuracy benchmark: every system on one dataset, each dictionary protocol, split into mentions of
seen / unseen text and of seen / unseen concepts (a concept no training mention carries).

    python benchmarks/accuracy.py --dataset ncbi \
        --model "angel-trl stage 1=outputs/ncbi-stage1" --model "angel-trl stage 2=outputs/ncbi-stage2"
    # any other data: the same benchmark through `angel-trl benchmark --kb ... --train ... --test ...`

The benchmark itself is angel_trl.baselines.benchmark.run_benchmark; this script picks a preset.

Systems: exact match, TF-IDF (char 3-grams), dense all-MiniLM-L6-v2 nearest name and the angel-trl
models given (each also with exact name matches ranked first), each under both dictionary
protocols (KB names only; KB + training mentions as synonyms), plus the training-mention dictionary
with TF-IDF back-off; with ``--hybrid`` each model also as a hybrid linker (its ranker fit on dev).
``--zero-shot`` runs the zero-shot protocol (train and dev without the test concepts). Writes
``<results_dir>/<dataset>.json``, ``<dataset>.md`` and ``<dataset>_similarity.png`` (acc@1 by
TF-IDF similarity between mention and gold name, the paper's analysis).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from angel_trl.baselines.benchmark import BenchmarkOptions, run_benchmark
from angel_trl.cli.options import add_benchmark_hybrid_options
from angel_trl.data.arguments import BENCHMARKS, benchmark_data
from angel_trl.progress import progress_on_terminal
from common import REPO_DATA_DIR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(BENCHMARKS), default="ncbi")
    ap.add_argument("--splits", nargs="+", default=["test"])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="An angel-trl output dir to score (repeatable).")
    ap.add_argument("--models-from", metavar="DIR", help="Also score DIR/<dataset>-stage1 and DIR/<dataset>-stage2 when they exist (what the recipes write).")
    ap.add_argument("--no-dense", action="store_true", help="Skip the dense peer and the hybrid's dense retriever (both need the 'bench' extra).")
    ap.add_argument("--expand-abbreviations", action="store_true", help="Every system links a mention that is an abbreviation defined in its document as its long form (Schwartz-Hearst); results go to <dataset>_abbreviations.{json,md,png}.")
    ap.add_argument("--zero-shot", action="store_true", help="The zero-shot protocol: train and dev lose every mention of a concept that occurs in test (the peers' training dictionary too; give angel-trl models trained with zero_shot: true); results go to <dataset>_zeroshot.{json,md,png}.")
    ap.add_argument("--hybrid", action="store_true", help="Also each angel-trl model as a hybrid linker (beam + retrieved candidates, exact model scores, a ranker fit on dev) under each protocol.")
    add_benchmark_hybrid_options(ap)
    ap.add_argument("--decode-again", action="store_true", help="Decode the KB protocol of angel-trl models even where the run saved predictions_<split>.jsonl for the same mentions.")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--link-batch-size", type=int, default=32)
    ap.add_argument("--results-dir", default="benchmarks/results")
    ap.add_argument("--tag", help="Name the result files <dataset>[_abbreviations][_zeroshot]_<TAG>.{json,md,png}: another run of a protocol beside the one REPORT.md reads (e.g. --tag medic_pt1ep).")
    ap.add_argument("--cache-dir", default="benchmarks/work", help="Dense name embeddings (.npy) and the hybrid's scored candidates (JSON lines) are cached here.")
    args = ap.parse_args()
    if args.hybrid_ablation and not args.hybrid:
        ap.error("--hybrid-ablation refits the hybrid's ranker: give --hybrid too")
    if args.hybrid_choose_ranker and not args.hybrid:
        ap.error("--hybrid-choose-ranker chooses the hybrid's ranker: give --hybrid too")
    models = dict(spec.split("=", 1) for spec in args.model)
    if args.models_from:
        for stage, label in (("stage1", "angel-trl stage 1"), ("stage2", "angel-trl stage 2 (DPO)")):
            if (Path(args.models_from) / f"{args.dataset}-{stage}" / "linker_config.json").exists():
                models.setdefault(label, str(Path(args.models_from) / f"{args.dataset}-{stage}"))
    progress_on_terminal()  # library bars off in a log file; linking and scoring report in timed lines there
    options = BenchmarkOptions(
        splits=args.splits, no_dense=args.no_dense, expand_abbreviations=args.expand_abbreviations, zero_shot=args.zero_shot, hybrid=args.hybrid, hybrid_ablation=args.hybrid_ablation, hybrid_fit_on=args.hybrid_fit_on, hybrid_choose_ranker=args.hybrid_choose_ranker, protocols=args.protocols,
        decode_again=args.decode_again, device=args.device, link_batch_size=args.link_batch_size, results_dir=args.results_dir, cache_dir=args.cache_dir,
        show_progress=True, tag=args.tag,
    )
    run_benchmark(benchmark_data(args.dataset, REPO_DATA_DIR), args.dataset, models, options, " ".join([Path(sys.executable).name, *sys.argv]))


if __name__ == "__main__":
    main()
