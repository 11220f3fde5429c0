"""``angel-trl benchmark``: every peer and the given linkers on any KB and train / dev / test corpora."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from angel_trl.cli.common import UsageError, check_outputs, check_source, no_loading_bar_in_a_log
from angel_trl.cli.options import Subparsers, add_benchmark_hybrid_options, add_command, add_kb_options, file_name, positive_int
from angel_trl.data.corpus import CORPUS_FORMATS
from angel_trl.errors import FieldError


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "benchmark",
        "benchmark linkers against every peer on any KB and corpus",
        "The accuracy benchmark of benchmarks/accuracy.py on your own data: exact match, TF-IDF, a dense "
        "MiniLM encoder, the training dictionary with TF-IDF back-off and each --model (also with exact "
        "matches first), under both dictionary protocols (KB names; KB + training mentions as synonyms), "
        "acc@1 / acc@5 split into seen / unseen text and concepts, with the acc@1-by-similarity plot. "
        "Writes RESULTS_DIR/NAME.json, NAME.md and NAME_<split>_similarity.png.",
        "angel-trl benchmark --kb data/demo/kb.jsonl --train data/demo/train.jsonl --dev data/demo/dev.jsonl --test data/demo/test.jsonl "
        "--model 'stage 1=outputs/demo-stage1' --name demo --results-dir outputs/demo-benchmark",
    )
    add_kb_options(p, True, "The KB file (or dataset source, --kb-format hf).")
    p.add_argument("--train", required=True, metavar="FILE", help="Training corpus: the second protocol's synonyms and the seen / unseen split.")
    p.add_argument("--dev", metavar="FILE", help="Development corpus (needed with --hybrid: the rankers are fit on it).")
    p.add_argument("--test", required=True, metavar="FILE", help="Corpus scored.")
    p.add_argument("--corpus-format", choices=CORPUS_FORMATS, default="jsonl", help="Format of the three corpora (default: %(default)s).")
    p.add_argument("--entity-type", action="append", metavar="TYPE", help="Keep only mentions of this type (repeatable; all when unset).")
    p.add_argument("--model", action="append", default=[], metavar="[LABEL=]DIR", help="An angel-trl linker directory to benchmark (repeatable); LABEL names its rows (default: the directory).")
    p.add_argument("--name", type=file_name, default="benchmark", help="Name of the result files and of the report (default: %(default)s).")
    p.add_argument("--results-dir", default="benchmarks/results", metavar="DIR", help="Where the JSON, markdown and plots go (default: %(default)s).")
    p.add_argument("--no-dense", action="store_true", help="Leave out the dense peer and the hybrid's dense retriever (they encode every KB name once; cached in --cache-dir).")
    p.add_argument("--hybrid", action="store_true", help="Also each model as a hybrid linker, its ranker fit on --dev (its retrievers: TF-IDF and, unless --no-dense, the dense encoder).")
    add_benchmark_hybrid_options(p)
    p.add_argument("--expand-abbreviations", action="store_true", help="Every system links an abbreviation defined in its document as its long form.")
    p.add_argument("--zero-shot", action="store_true", help="The zero-shot protocol: train and dev lose every mention of a test concept.")
    p.add_argument("--device", metavar="DEVICE", help="Torch device (default: cuda when available, else cpu).")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="Mentions per decoding batch (default: %(default)s).")
    p.add_argument("--cache-dir", default="benchmarks/work", metavar="DIR", help="Dense name embeddings and the hybrid's scored candidates are cached here (default: %(default)s).")
    p.set_defaults(handler=run)


def _models(specs: list[str]) -> dict[str, str]:
    models = {}
    for spec in specs:
        label, sep, directory = spec.partition("=")
        label, directory = (label, directory) if sep else (spec, spec)
        check_source(directory, "a saved angel-trl linker")
        if label in models:
            raise UsageError(f"--model label {label!r} given twice")
        models[label] = directory
    return models


def run(args: argparse.Namespace) -> int:
    from angel_trl.baselines.benchmark import BenchmarkOptions, run_benchmark
    from angel_trl.data.arguments import DataArguments

    if args.hybrid and not args.dev:
        raise UsageError("--hybrid fits its rankers on --dev: give one")
    if args.hybrid_ablation and not args.hybrid:
        raise UsageError("--hybrid-ablation refits the hybrid's ranker: give --hybrid too")
    if args.hybrid_choose_ranker and not args.hybrid:
        raise UsageError("--hybrid-choose-ranker chooses the hybrid's ranker: give --hybrid too")
    for path in filter(None, (args.train, args.dev, args.test)):
        if args.corpus_format != "bigbio" and not Path(path).exists():
            raise UsageError(f"{path}: no such file")
    check_outputs(*(str(Path(args.results_dir) / f"{args.name}{suffix}") for suffix in (".json", ".md")), args=args)
    data = DataArguments(
        kb_path=args.kb, kb_format=args.kb_format, kb_supplementary_path=args.mesh_supplementary, mesh_tree_prefixes=args.mesh_tree_prefix,
        train_file=args.train, dev_file=args.dev, test_file=args.test, corpus_format=args.corpus_format, entity_types=args.entity_type,
    )
    options = BenchmarkOptions(
        no_dense=args.no_dense, expand_abbreviations=args.expand_abbreviations, zero_shot=args.zero_shot, hybrid=args.hybrid, hybrid_ablation=args.hybrid_ablation, hybrid_fit_on=args.hybrid_fit_on, hybrid_choose_ranker=args.hybrid_choose_ranker, protocols=args.protocols,
        link_batch_size=args.batch_size, results_dir=args.results_dir, cache_dir=args.cache_dir, show_progress=True, **({"device": args.device} if args.device else {}),
    )
    no_loading_bar_in_a_log()
    try:
        run_benchmark(data, args.name, _models(args.model), options, "angel-trl " + shlex.join(sys.argv[1:]))
    except FieldError as e:  # an option that cannot work with these files (checked before any decoding)
        raise UsageError(f"--{e.field.replace('_', '-')}: {e.problem}") from None
    return 0
