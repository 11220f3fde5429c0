"""``angel-trl kb-stats``: the size of a KB (concepts, names, ambiguous names, ...)."""

from __future__ import annotations

import argparse
import json

from angel_trl.cli.common import kb_from_args
from angel_trl.cli.options import Subparsers, add_command, add_kb_options


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "kb-stats",
        "print the size of a KB (concepts, names, ambiguous names, ...)",
        "Read a KB and print its statistics: concepts, names, distinct normalised names, names shared by "
        "several concepts, alternative ids and repeated-id lines (merged).",
        "angel-trl kb-stats --kb data/demo/kb.jsonl --format json",
    )
    add_kb_options(p, True, "The KB file.")
    p.add_argument("--format", choices=("table", "json"), default="table", help="Output as a markdown table or JSON (default: %(default)s).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stats = kb_from_args(args).stats()
    if args.format == "json":
        print(json.dumps(stats, indent=2))
    else:
        print("| statistic | value |\n|---|---|")
        print("\n".join(f"| {k} | {v} |" for k, v in stats.items()))
    return 0
