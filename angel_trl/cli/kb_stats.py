"""``angel-trl kb-stats``: the size of a KB (concepts, names, ambiguous names, ...)."""

from __future__ import annotations

import argparse
import json

from angel_trl.cli.common import check_source, kb_from_args, loading
from angel_trl.cli.options import Subparsers, add_command, add_kb_options, positive_int
from angel_trl.defaults import MAX_NAME_TOKENS


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "kb-stats",
        "print the size of a KB (concepts, names, ambiguous names, ...)",
        "Read a KB and print its statistics: concepts, names, distinct normalised names, names shared by "
        "several concepts, alternative ids and repeated-id lines (merged), what the reader skipped or repaired; "
        "with --tokenizer also how many names a trie for that tokenizer cuts to --max-name-tokens and how "
        "many share another name's token path (every concept stays reachable: counted, never silent).",
        "angel-trl kb-stats --kb data/demo/kb.jsonl --format json",
    )
    add_kb_options(p, True, "The KB file.")
    p.add_argument("--tokenizer", metavar="DIR", help="Also count, for this tokenizer (a trained linker's directory), names cut to --max-name-tokens and names sharing a token path (loads transformers).")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True, help="With --tokenizer: lowercase names, as training does by default (default: %(default)s).")
    p.add_argument("--max-name-tokens", type=positive_int, default=MAX_NAME_TOKENS, metavar="N", help="With --tokenizer: the name-token limit of linking (default: %(default)s).")
    p.add_argument("--format", choices=("table", "json"), default="table", help="Output as a markdown table or JSON (default: %(default)s).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    kb = kb_from_args(args)
    stats = kb.stats()
    if args.tokenizer:
        stats.update(_token_path_stats(kb, args))
    if args.format == "json":
        print(json.dumps(stats, indent=2))
    else:
        print("| statistic | value |\n|---|---|")
        print("\n".join(f"| {k} | {v} |" for k, v in stats.items()))
    return 0


def _token_path_stats(kb, args: argparse.Namespace) -> dict[str, int]:
    """Names cut to the token limit and names sharing a trie path, for ``--tokenizer``."""
    from transformers import AutoTokenizer

    from angel_trl.data.names import NameTable
    from angel_trl.linking.linker import build_name_trie
    from angel_trl.text.tokenization import SequenceEncoder

    check_source(args.tokenizer, "a tokenizer directory")
    with loading("the tokenizer", args.tokenizer):
        encoder = SequenceEncoder(AutoTokenizer.from_pretrained(args.tokenizer), max_name_tokens=args.max_name_tokens)
    table = NameTable.from_kb(kb, args.lowercase)
    return {"names_truncated": encoder.count_truncated_names(table.names), "trie_collisions": build_name_trie(table, encoder).num_collisions}
