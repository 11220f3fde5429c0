"""``angel-trl evaluate``: score a linker on an annotated corpus (acc@1 / acc@5, seen / unseen)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from angel_trl.cli.common import as_linker_expects, check_outputs, corpus_from_args, emit_json, hybrid_file, kb_for_linker, kb_from_args, linker_from_args, linker_over_kb, print_counts, with_hybrid
from angel_trl.cli.options import Subparsers, add_command, add_corpus_options, add_kb_options, add_linker_options
from angel_trl.data.files import write_jsonl


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "evaluate",
        "score a linker on an annotated corpus (acc@1/acc@5, seen/unseen)",
        "Link every mention of an annotated corpus and score it: acc@1 and acc@5 over distinct concepts, "
        "NIL mentions excluded, composite mentions right when any gold id is predicted. With --train, "
        "mentions are split into seen / unseen by their text. The metrics JSON goes to stdout (or "
        "--output), a markdown table to stderr.",
        "angel-trl evaluate outputs/demo-stage1 --corpus data/demo/test.jsonl --train data/demo/train.jsonl --predictions test_predictions.jsonl",
    )
    add_linker_options(p)
    p.add_argument("--corpus", required=True, metavar="FILE", help="The annotated corpus to score on.")
    p.add_argument("--train", metavar="FILE", help="Training corpus (same format): its mention texts count as seen.")
    add_corpus_options(p)
    add_kb_options(p, False, "KB that maps gold ids to concepts (default: the kb.jsonl saved with the linker).")
    p.add_argument("--output", metavar="FILE", help="Write the metrics JSON here (default: stdout).")
    p.add_argument("--predictions", metavar="FILE", help="Also write one JSON line per scored mention (gold, correct@k, predictions).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from angel_trl.evaluation import TrainingSeen, link_and_score, scores_table

    # Every output is checked and every input file read before the model is loaded: a typo fails in a second, not after loading.
    check_outputs(args.output, args.predictions, args=args)
    corpus = corpus_from_args(args.corpus, args)
    train = corpus_from_args(args.train, args) if args.train else None
    kb = kb_from_args(args) if args.kb else None
    hybrid = hybrid_file(args)
    linker = linker_from_args(args, num_beams=args.num_beams, top_k=args.top_k, batch_size=args.batch_size, max_source_length=args.max_source_length, exact_match_first=args.exact_match_first)
    corpus, train = as_linker_expects(args, linker, corpus, train)
    linker = linker_over_kb(linker, kb, hybrid)
    kb = kb_for_linker(kb, linker, args.model)
    seen = TrainingSeen.of(train.mentions, kb) if train else None
    metrics, predictions = link_and_score(with_hybrid(linker, hybrid), corpus, kb, seen, show_progress=True, what=args.corpus)
    repairs = {name: c.counts for name, c in (("corpus", corpus), ("train", train)) if c is not None and c.counts}
    if repairs:
        # What the readers repaired or skipped (duplicate document ids, whitespace around mentions, ...).
        metrics["input_counts"] = {name: dict(counts) for name, counts in repairs.items()}
    if args.predictions:
        write_jsonl(args.predictions, predictions)
    emit_json(metrics, args.output)
    # The table is for people: on stderr, so that stdout stays one JSON document.
    print(scores_table({Path(args.corpus).name: metrics}), file=sys.stderr)
    for name, counts in repairs.items():
        print_counts(f"{name} {getattr(args, name)}", counts)
    return 0
