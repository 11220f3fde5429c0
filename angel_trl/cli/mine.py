"""``angel-trl mine``: mine preference pairs (stage-2 data) from a linker's ranked predictions."""

from __future__ import annotations

import argparse
import json

from angel_trl.cli.common import UsageError, as_linker_expects, check_outputs, corpus_from_args, kb_for_linker, kb_from_args, linker_from_args, linker_over_kb
from angel_trl.cli.options import Subparsers, add_command, add_corpus_options, add_kb_options, add_linker_options, file_name, non_negative_int, positive_int
from angel_trl.defaults import MINING_DEFAULTS, MINING_NEGATIVE_SOURCES, MINING_RULES
from angel_trl.progress import on_terminal


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "mine",
        "mine preference pairs (stage-2 data) from a linker's predictions",
        "Link the mentions of a training corpus and turn the ranked predictions into prompt / chosen / "
        "rejected pairs (ANGEL stage 2). The pairs are saved with Dataset.save_to_disk in "
        "OUTPUT_DIR/SPLIT and the counts in OUTPUT_DIR/mining_summary.json (keyed by split), the layout "
        "recipes/mine.py writes and recipes/stage2_dpo.py reads.",
        "angel-trl mine outputs/demo-stage1 --corpus data/demo/train.jsonl --output-dir outputs/demo-pairs\n"
        "  angel-trl mine outputs/demo-stage1 --corpus data/demo/dev.jsonl --output-dir outputs/demo-pairs --split dev",
    )
    add_linker_options(p, beams_and_top_k=False)
    p.add_argument("--corpus", required=True, metavar="FILE", help="Annotated corpus whose mentions are mined (NIL, composite and out-of-KB mentions are skipped and counted).")
    add_corpus_options(p)
    add_kb_options(p, False, "KB of the gold ids (default: the kb.jsonl saved with the linker).")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="Where the pairs and mining_summary.json go.")
    p.add_argument("--split", type=file_name, default="train", metavar="NAME", help="Sub-directory of the pairs and key in the summary (default: %(default)s).")
    p.add_argument("--rule", choices=MINING_RULES, default=MINING_DEFAULTS["rule"],
                   help="paper: misranked pairs, or top-1 vs the best wrong concept; all: every correct/wrong pair in the beam; official: the official ANGEL code, every correct beam name paired with every wrong name ranked above it among the top-k names; tfidf: TF-IDF-similar names as negatives (default: %(default)s).")
    p.add_argument("--also-rules", nargs="+", choices=MINING_RULES, default=[], metavar="RULE",
                   help="More rules fed by the same decoding (decoding is nearly all of mining's time), each into OUTPUT_DIR-RULE, as a run with --rule RULE --output-dir OUTPUT_DIR-RULE would write.")
    p.add_argument("--top-k", type=positive_int, default=MINING_DEFAULTS["top_k"], metavar="K", help="Distinct concepts kept per mention (default: %(default)s).")
    p.add_argument("--num-beams", type=positive_int, default=MINING_DEFAULTS["num_beams"], metavar="N", help="Beams of the constrained search while mining (default: %(default)s).")
    p.add_argument("--tfidf-negatives", type=positive_int, default=MINING_DEFAULTS["tfidf_negatives"], metavar="N", help="Negatives per mention for --rule tfidf (default: %(default)s).")
    p.add_argument("--negatives-from", choices=MINING_NEGATIVE_SOURCES, default=MINING_DEFAULTS["negatives_from"],
                   help="What --rule paper/all ranks: the beam's concepts, or the hybrid linker's candidates (beam + TF-IDF-retrieved concepts, ranked by the model's exact score) (default: %(default)s).")
    p.add_argument("--gold-fallback", action="store_true", help="When no correct concept is in the beam, use the gold concept's most similar name as chosen.")
    p.add_argument("--unseen-concept-names", type=non_negative_int, default=0, metavar="N",
                   help="Also mine N KB names of concepts no mention of --corpus carries, each as a mention of its own without context (a sample drawn with --seed, one name per concept): pairs where the model gives an untrained concept's name a trained concept (default: %(default)s, none).")
    p.add_argument("--seed", type=int, default=42, help="Random seed set before mining, and of the --unseen-concept-names sample (default: %(default)s).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from angel_trl.data.files import exclusive_output_dir
    from angel_trl.mining import also_rule_dirs

    try:
        outputs = {args.rule: args.output_dir, **also_rule_dirs(args.output_dir, args.rule, args.also_rules)}
    except ValueError as e:
        raise UsageError(str(e)) from None
    # Checked, then locked, before anything else: a second run into a directory fails at once, not after mining.
    for directory in outputs.values():
        check_outputs(directory, directory=True)
    with ExitStack() as locks:
        for directory in outputs.values():
            locks.enter_context(exclusive_output_dir(directory))
        return _mine(args, outputs)


def _mine(args: argparse.Namespace, outputs: dict) -> int:
    """Mine the corpus with each rule of ``outputs`` (rule -> output directory; the first is ``--rule``'s)."""
    from datasets import disable_progress_bars
    from transformers import set_seed

    from angel_trl.mining import MiningConfig, mine_pairs_by_rule, read_mining_summaries, save_mined_pairs, training_corpus_to_mine

    try:  # settings that cannot go together fail before anything loads
        configs = [MiningConfig(rule=rule, top_k=args.top_k, num_beams=args.num_beams, gold_fallback=args.gold_fallback, tfidf_negatives=args.tfidf_negatives, negatives_from=args.negatives_from,
                                unseen_concept_names=args.unseen_concept_names, unseen_concept_seed=args.seed) for rule in outputs]
    except ValueError as e:
        raise UsageError(str(e)) from None
    corpus = corpus_from_args(args.corpus, args)
    kb = kb_from_args(args) if args.kb else None
    # Read before mining: a damaged summary fails at once.
    earlier = {rule: read_mining_summaries(directory) for rule, directory in outputs.items()}
    set_seed(args.seed)
    # Beams and top-k of mining are MiningConfig's: mine_pairs applies them to a view of the linker.
    linker = linker_from_args(args, batch_size=args.batch_size, max_source_length=args.max_source_length)
    linker = linker_over_kb(linker, kb, None)  # decode over the KB the gold ids come from, as evaluate does
    kb = kb_for_linker(kb, linker, args.model)
    (corpus,) = as_linker_expects(args, linker, corpus)
    corpus = training_corpus_to_mine(corpus, kb, configs[0])
    mined = mine_pairs_by_rule(linker, corpus, kb, configs, show_progress=True)
    if not on_terminal():
        disable_progress_bars()  # save_to_disk draws a bar even into a log file
    for (rule, directory), (pairs, summary) in zip(outputs.items(), mined):
        save_mined_pairs(directory, {args.split: pairs}, {args.split: summary}, earlier[rule])
    summaries = [summary for _, summary in mined]
    print(json.dumps(summaries[0] if len(summaries) == 1 else {str(d): s for d, s in zip(outputs.values(), summaries)}, indent=2))
    return 0
