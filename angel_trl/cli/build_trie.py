"""``angel-trl build-trie``: build a KB's linking vocabulary (names.jsonl) and name trie (trie.npz) for a tokenizer."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from angel_trl.cli.common import check_outputs, check_source, kb_from_args, loading
from angel_trl.cli.options import Subparsers, add_command, add_kb_options, positive_int
from angel_trl.defaults import MAX_NAME_TOKENS


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "build-trie",
        "build names.jsonl and trie.npz for a KB and a tokenizer",
        "Build the linking vocabulary of a KB (names.jsonl: every distinct normalised name with its "
        "concept ids) and the prefix trie over the names' token ids (trie.npz), exactly as training does, "
        "e.g. to link with a trained model against a newer KB.",
        "angel-trl build-trie --kb kb/medic.txt --kb-format medic --tokenizer outputs/ncbi-stage1 --output outputs/medic-trie",
    )
    add_kb_options(p, True, "The KB file.")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="Tokenizer directory (a trained linker's directory) or Hub id.")
    p.add_argument("--output", required=True, metavar="DIR", help="Directory for names.jsonl and trie.npz (created; existing files replaced).")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True, help="Lowercase names, as training does by default (default: %(default)s).")
    p.add_argument("--max-name-tokens", type=positive_int, default=MAX_NAME_TOKENS, metavar="N", help="Longer names are cut to N tokens, as in linking (default: %(default)s).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from angel_trl.linking.linker import NAMES_FILE, TRIE_FILE, build_name_trie
    from angel_trl.data.names import NameTable
    from angel_trl.text.tokenization import SequenceEncoder

    check_outputs(args.output, directory=True)
    check_source(args.tokenizer, "a tokenizer directory")
    t0 = time.perf_counter()
    kb = kb_from_args(args)
    t_kb = time.perf_counter() - t0
    with loading("the tokenizer", args.tokenizer):
        encoder = SequenceEncoder(AutoTokenizer.from_pretrained(args.tokenizer), max_name_tokens=args.max_name_tokens)
    t0 = time.perf_counter()
    table = NameTable.from_kb(kb, args.lowercase)
    trie = build_name_trie(table, encoder)
    t_build = time.perf_counter() - t0
    out = Path(args.output)
    table.save(out / NAMES_FILE)
    trie.save(out / TRIE_FILE)
    case = "lowercased" if args.lowercase else "case kept"
    print(f"KB {args.kb}: {len(kb)} concepts, {kb.num_names} names -> {len(table)} distinct names ({case}); read in {t_kb:.2f} s")
    print(f"trie: {trie.num_nodes} nodes, {trie.nbytes / 1e6:.1f} MB of arrays; tokenised and built in {t_build:.2f} s; {trie.num_collisions} name(s) share another name's token path (all reachable); {encoder.count_truncated_names(table.names)} name(s) cut to {args.max_name_tokens} tokens")
    print(f"wrote {out / NAMES_FILE} and {out / TRIE_FILE}")
    return 0
