"""The ``angel-trl`` command line: link, evaluate, mine, build-trie and kb-stats over the library.

Each subcommand parses its arguments and calls library functions. Bad user input (a missing file,
a malformed KB or corpus line, text without ``[ST] ... [ET]``, a directory that is not a saved
linker, an unknown format) ends with one ``angel-trl: error: ...`` line on stderr and a non-zero
exit status (2 for command-line usage, 1 for input); anything else is a bug and raises.

torch, transformers and datasets are imported inside the subcommands that need them, so that
``--help`` and ``kb-stats`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from angel_trl import __version__
from angel_trl.data.corpus import CORPUS_FORMATS, Corpus, load_corpus
from angel_trl.errors import InputFormatError
from angel_trl.data.files import read_lines, write_json, write_jsonl
from angel_trl.data.kb import KB_FORMATS, KnowledgeBase, load_kb
from angel_trl.defaults import MAX_NAME_TOKENS, MINING_DEFAULTS, MINING_RULES

PROG = "angel-trl"
# A Hub model id ("owner/name"); any other path that does not exist locally is a user error.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class CliError(Exception):
    """A user error: reported as one line, no traceback."""

    exit_code = 1


class UsageError(CliError):
    """Bad command-line arguments (argparse's exit status)."""

    exit_code = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the usage and then the error; we keep every user error to one line.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# ---------------------------------------------------------------------------------------- helpers
def _show_progress() -> bool:
    return sys.stderr.isatty()


def _is_stdout(output: str | None) -> bool:
    return output in (None, "-")


def _emit_json(obj: dict, output: str | None) -> None:
    if _is_stdout(output):
        print(json.dumps(obj, indent=2, ensure_ascii=False))
    else:
        write_json(output, obj)


def _emit_jsonl(rows: list[dict], output: str | None) -> None:
    if _is_stdout(output):
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        write_jsonl(output, rows)


def _load_kb(args: argparse.Namespace) -> KnowledgeBase:
    if args.kb_format != "mesh" and (args.mesh_supplementary or args.mesh_tree_prefix):
        raise UsageError("--mesh-supplementary and --mesh-tree-prefix need --kb-format mesh")
    return load_kb(args.kb, args.kb_format, args.mesh_supplementary, args.mesh_tree_prefix)


def _load_corpus(path: str, args: argparse.Namespace) -> Corpus:
    return load_corpus(path, args.corpus_format, args.entity_type)


def _as_linker_expects(args: argparse.Namespace, linker, *corpora: Corpus | None) -> list[Corpus | None]:
    """``corpora`` with abbreviations expanded if ``--expand-abbreviations`` says so or, unset, if the
    linker was trained so (decided once for all of them, so a mismatch is warned about once)."""
    from angel_trl.data.arguments import resolve_expansion

    if not resolve_expansion(args.expand_abbreviations, linker.config.expand_abbreviations):
        return list(corpora)
    from angel_trl.data.abbreviations import expand_abbreviations

    return [expand_abbreviations(c) if c is not None else None for c in corpora]


def _check_source(source: str, what: str, required: Sequence[str] = ()) -> None:
    """Fail early on a local path that cannot be ``what``; a Hub id is left to the loader."""
    path = Path(source)
    if path.exists():
        if not path.is_dir():
            raise CliError(f"{source}: not a directory (expected {what})")
        missing = [f for f in required if not (path / f).exists()]
        if missing:
            raise CliError(f"{source}: not {what}: missing {', '.join(missing)}")
    elif not _HUB_ID.fullmatch(source):
        raise CliError(f"{source}: no such directory (expected {what}, or a Hub id 'owner/name')")


@contextmanager
def _loading(what: str, source: str) -> Iterator[None]:
    """Turn a loader's OSError / ValueError (missing weights, unknown Hub id, bad tokenizer) into a user error."""
    try:
        yield
    except (OSError, ValueError) as e:
        if Path(source).exists():
            raise CliError(f"cannot load {what} from {source}: {e}") from e
        raise CliError(f"{source}: no such directory, and loading {what} from the Hub failed: {e}") from e


def _load_linker(args: argparse.Namespace, **overrides: int | bool | None):
    """``EntityLinker.from_pretrained(args.model)``; ``overrides`` that are not None replace saved config fields."""
    from transformers.utils import logging as transformers_logging

    from angel_trl.linking.linker import LINKER_CONFIG, NAMES_FILE, TRIE_FILE, EntityLinker

    if not _show_progress():
        # transformers draws a "Loading weights" bar even into a log file.
        transformers_logging.disable_progress_bar()
    _check_source(args.model, "a saved angel-trl linker", (LINKER_CONFIG, NAMES_FILE, TRIE_FILE))
    with _loading("the linker", args.model):
        return EntityLinker.from_pretrained(args.model, revision=args.revision, device=args.device, **{k: v for k, v in overrides.items() if v is not None})


def _hybrid_file(args: argparse.Namespace) -> Path | None:
    """With ``--hybrid``: the hybrid.json beside the model (or the FILE given), checked before anything loads."""
    if args.hybrid is None:
        return None
    from angel_trl.hybrid.linker import HYBRID_FILE

    path = Path(args.hybrid or Path(args.model) / HYBRID_FILE)
    if not path.is_file():
        raise CliError(f"{path}: no hybrid linker file; fit one with recipes/fit_hybrid.py (--model_dir {args.model}), or pass --hybrid FILE")
    return path


def _with_hybrid(linker, path: Path | None):
    """``linker``, or the hybrid linker over it that ``path`` (:func:`_hybrid_file`) holds."""
    if path is None:
        return linker
    from angel_trl.hybrid.linker import HybridLinker

    try:
        return HybridLinker.load(linker, path)
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"{path}: not a usable hybrid linker file: {e}") from None


def _kb_for_linker(kb: KnowledgeBase | None, linker, model: str) -> KnowledgeBase:
    """The ``--kb`` given, else the KB saved beside the linker."""
    kb = kb if kb is not None else linker.kb
    if kb is None:
        raise CliError(f"{model}: no kb.jsonl saved with the linker; pass --kb FILE")
    return kb


# ---------------------------------------------------------------------------------------- link
def _marked_lines(args: argparse.Namespace) -> list[tuple[dict, str, str]]:
    """``(row metadata, marked text, where it came from)`` for each --text or --input line."""
    if args.text:
        return [({"text": t}, t, "--text") for t in args.text]
    source = "<stdin>" if args.input == "-" else args.input
    lines = enumerate(sys.stdin, start=1) if args.input == "-" else read_lines(args.input)
    out = []
    for lineno, line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            out.append(({"line": lineno, "text": line}, line, f"{source}:{lineno}"))
    if not out:
        raise CliError(f"{source}: no marked lines to link")
    return out


def _marked_inputs(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """Row metadata and texts of --text / --input, every ``[ST] ... [ET]`` span checked."""
    from angel_trl.text.examples import ExampleConfig
    from angel_trl.linking.linker import LinkInput

    rows, texts = [], []
    for meta, text, where in _marked_lines(args):
        try:
            # Checked before the model loads; EntityLinker.link parses the text again with its own config.
            LinkInput.from_marked(text, ExampleConfig())
        except ValueError as e:
            raise CliError(f"{where}: {e}") from None
        rows.append(meta)
        texts.append(text)
    return rows, texts


def cmd_link(args: argparse.Namespace) -> int:
    from angel_trl.evaluation import candidate_rows

    if args.corpus:
        corpus = _load_corpus(args.corpus, args)
        mentions = corpus.mentions
        rows = [{"doc_id": m.doc_id, "start": m.start, "end": m.end, "mention": m.text, "gold_ids": list(m.ids)} for m in mentions]
    else:
        rows, texts = _marked_inputs(args)
    hybrid = _hybrid_file(args)
    linker = _load_linker(args, num_beams=args.num_beams, top_k=args.top_k, batch_size=args.batch_size, exact_match_first=args.exact_match_first)
    if args.corpus:
        (corpus,) = _as_linker_expects(args, linker, corpus)
        mentions = corpus.mentions
    linker = _with_hybrid(linker, hybrid)
    inputs = linker.inputs_for(mentions, corpus.texts()) if args.corpus else texts
    results = linker.link(inputs, show_progress=_show_progress())
    for row, result in zip(rows, results):
        row["mention"] = result.mention
        row["predictions"] = candidate_rows(result)
    _emit_jsonl(rows, args.output)
    return 0


# ---------------------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from angel_trl.evaluation import TrainingSeen, link_and_score, scores_table

    # Every input file is read before the model is loaded: a typo fails in a second, not after loading.
    corpus = _load_corpus(args.corpus, args)
    train = _load_corpus(args.train, args) if args.train else None
    kb = _load_kb(args) if args.kb else None
    hybrid = _hybrid_file(args)
    linker = _load_linker(args, num_beams=args.num_beams, top_k=args.top_k, batch_size=args.batch_size, exact_match_first=args.exact_match_first)
    corpus, train = _as_linker_expects(args, linker, corpus, train)
    kb = _kb_for_linker(kb, linker, args.model)
    seen = TrainingSeen.of(train.mentions, kb) if train else None
    metrics, predictions = link_and_score(_with_hybrid(linker, hybrid), corpus, kb, seen, show_progress=_show_progress())
    if args.predictions:
        write_jsonl(args.predictions, predictions)
    _emit_json(metrics, args.output)
    # The table is for people: on stderr, so that stdout stays one JSON document.
    print(scores_table({Path(args.corpus).name: metrics}), file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------- mine
def cmd_mine(args: argparse.Namespace) -> int:
    from datasets import disable_progress_bars
    from transformers import set_seed

    from angel_trl.mining import MiningConfig, mine_pairs, read_mining_summaries, save_mined_pairs

    corpus = _load_corpus(args.corpus, args)
    kb = _load_kb(args) if args.kb else None
    # Read before mining: a damaged summary fails at once.
    earlier = read_mining_summaries(args.output_dir)
    set_seed(args.seed)
    # Beams and top-k of mining are MiningConfig's: mine_pairs applies them to a view of the linker.
    linker = _load_linker(args, batch_size=args.batch_size)
    kb = _kb_for_linker(kb, linker, args.model)
    (corpus,) = _as_linker_expects(args, linker, corpus)
    config = MiningConfig(rule=args.rule, top_k=args.top_k, num_beams=args.num_beams, gold_fallback=args.gold_fallback, tfidf_negatives=args.tfidf_negatives)
    pairs, summary = mine_pairs(linker, corpus, kb, config, show_progress=_show_progress())
    if not _show_progress():
        disable_progress_bars()  # save_to_disk draws a bar even into a log file
    save_mined_pairs(args.output_dir, {args.split: pairs}, {args.split: summary}, earlier)
    print(json.dumps(summary, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- build-trie
def cmd_build_trie(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from angel_trl.linking.linker import NAMES_FILE, TRIE_FILE, build_name_trie
    from angel_trl.data.names import NameTable
    from angel_trl.text.tokenization import SequenceEncoder

    _check_source(args.tokenizer, "a tokenizer directory")
    t0 = time.perf_counter()
    kb = _load_kb(args)
    t_kb = time.perf_counter() - t0
    with _loading("the tokenizer", args.tokenizer):
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
    print(f"trie: {trie.num_nodes} nodes, {trie.nbytes / 1e6:.1f} MB of arrays; tokenised and built in {t_build:.2f} s; {trie.num_collisions} name(s) share another name's token path (all reachable)")
    print(f"wrote {out / NAMES_FILE} and {out / TRIE_FILE}")
    return 0


# ---------------------------------------------------------------------------------------- kb-stats
def cmd_kb_stats(args: argparse.Namespace) -> int:
    stats = _load_kb(args).stats()
    if args.format == "json":
        print(json.dumps(stats, indent=2))
    else:
        print("| statistic | value |\n|---|---|")
        print("\n".join(f"| {k} | {v} |" for k, v in stats.items()))
    return 0


# ---------------------------------------------------------------------------------------- parser
def _add_kb_options(p: argparse.ArgumentParser, required: bool, kb_help: str) -> None:
    p.add_argument("--kb", required=required, metavar="FILE", help=kb_help)
    p.add_argument("--kb-format", choices=KB_FORMATS, default="jsonl", help="KB file format (default: %(default)s; medic = CTD MEDIC, mesh = MeSH descriptor TSV).")
    p.add_argument("--mesh-supplementary", metavar="FILE", help="MeSH supplementary-records TSV added to the KB (--kb-format mesh).")
    p.add_argument("--mesh-tree-prefix", action="append", metavar="PREFIX", help="Keep MeSH descriptors whose tree numbers start with PREFIX, e.g. D for chemicals (repeatable; all when unset).")


def _add_corpus_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-format", choices=CORPUS_FORMATS, default="jsonl", help="Corpus file format (default: %(default)s).")
    p.add_argument("--entity-type", action="append", metavar="TYPE", help="Keep only mentions of this type, e.g. Disease for BC5CDR (repeatable; all when unset).")
    p.add_argument(
        "--expand-abbreviations", action=argparse.BooleanOptionalAction, default=None,
        help="Link a mention that is an abbreviation defined in its document, 'myocardial infarction (MI)', as its long form (default: as the model was trained, recorded in its linker_config.json).",
    )


def _add_linker_options(p: argparse.ArgumentParser, beams_and_top_k: bool = True) -> None:
    p.add_argument("model", metavar="MODEL_DIR", help="Directory written by a training recipe (model, tokenizer, trie.npz, names.jsonl, linker_config.json), or a Hub id.")
    if beams_and_top_k:
        p.add_argument("--num-beams", type=_positive_int, metavar="N", help="Beams of the constrained search (default: the saved linker config's).")
        p.add_argument("--top-k", type=_positive_int, metavar="K", help="Distinct concepts returned per mention (default: the saved linker config's).")
        p.add_argument("--exact-match-first", action="store_true", default=None, help="Rank first the concepts with a name equal to the mention (KB names, plus training mentions if the linker's trie has them), then the model's ranking.")
        p.add_argument("--hybrid", nargs="?", const="", default=None, metavar="FILE", help="Link with the hybrid linker (beam + retrieved candidates, exact model scores, a ranker): the hybrid.json recipes/fit_hybrid.py wrote beside the model, or FILE. Scores are then the ranker's probabilities.")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="Mentions per decoding batch (default: the saved linker config's).")
    p.add_argument("--revision", metavar="REV", help="Branch, tag or commit of a Hub linker (Hub ids only; a token comes from HF_TOKEN or `hf auth login`).")
    p.add_argument("--device", metavar="DEVICE", help="Torch device, e.g. cpu or cuda:0 (default: where the model loads, cpu).")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Generative biomedical entity linking (ANGEL): link mentions with a trained linker, score it, mine preference pairs, build name tries.",
        epilog="Run 'angel-trl COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, description: str, example: str) -> argparse.ArgumentParser:
        # Raw formatting keeps the example lines apart, so the prose is wrapped here.
        return sub.add_parser(name, help=summary, description=textwrap.fill(description, 88), epilog="Example:\n  " + example, formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command(
        "link",
        "link marked mentions or every mention of a corpus",
        "Link mentions to KB concepts with a trained linker (trie-constrained beam search). The input is "
        "text with the mention marked as '[ST] mention [ET]' (--text, or --input, one per line), or an "
        "annotated corpus (--corpus: every mention). Writes one JSON line per mention: the mention, its "
        "top-k predictions (concept id, KB name, score = log-probability of the name) and, for a corpus, "
        "the document id, offsets and gold ids.",
        "angel-trl link outputs/demo-stage1 --text 'Immunodeficiency due to [ST] ADA [ET] in two infants.' --top-k 3\n"
        "  angel-trl link outputs/demo-stage1 --corpus data/demo/test.jsonl --output predictions.jsonl",
    )
    _add_linker_options(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", metavar="TEXT", help="A text with one '[ST] mention [ET]' span (repeatable).")
    source.add_argument("--input", metavar="FILE", help="A file of such texts, one per line ('-' = stdin); blank lines are skipped, rows carry the line number.")
    source.add_argument("--corpus", metavar="FILE", help="An annotated corpus: link every mention (NIL ones too).")
    _add_corpus_options(p)
    p.add_argument("--output", metavar="FILE", help="Write the JSON lines here (default: stdout).")
    p.set_defaults(handler=cmd_link)

    p = command(
        "evaluate",
        "score a linker on an annotated corpus (acc@1/acc@5, seen/unseen)",
        "Link every mention of an annotated corpus and score it: acc@1 and acc@5 over distinct concepts, "
        "NIL mentions excluded, composite mentions right when any gold id is predicted. With --train, "
        "mentions are split into seen / unseen by their text. The metrics JSON goes to stdout (or "
        "--output), a markdown table to stderr.",
        "angel-trl evaluate outputs/demo-stage1 --corpus data/demo/test.jsonl --train data/demo/train.jsonl --predictions test_predictions.jsonl",
    )
    _add_linker_options(p)
    p.add_argument("--corpus", required=True, metavar="FILE", help="The annotated corpus to score on.")
    p.add_argument("--train", metavar="FILE", help="Training corpus (same format): its mention texts count as seen.")
    _add_corpus_options(p)
    _add_kb_options(p, False, "KB that maps gold ids to concepts (default: the kb.jsonl saved with the linker).")
    p.add_argument("--output", metavar="FILE", help="Write the metrics JSON here (default: stdout).")
    p.add_argument("--predictions", metavar="FILE", help="Also write one JSON line per scored mention (gold, correct@k, predictions).")
    p.set_defaults(handler=cmd_evaluate)

    p = command(
        "mine",
        "mine preference pairs (stage-2 data) from a linker's predictions",
        "Link the mentions of a training corpus and turn the ranked predictions into prompt / chosen / "
        "rejected pairs (ANGEL stage 2). The pairs are saved with Dataset.save_to_disk in "
        "OUTPUT_DIR/SPLIT and the counts in OUTPUT_DIR/mining_summary.json (keyed by split), the layout "
        "recipes/mine.py writes and recipes/stage2_dpo.py reads.",
        "angel-trl mine outputs/demo-stage1 --corpus data/demo/train.jsonl --output-dir outputs/demo-pairs\n"
        "  angel-trl mine outputs/demo-stage1 --corpus data/demo/dev.jsonl --output-dir outputs/demo-pairs --split dev",
    )
    _add_linker_options(p, beams_and_top_k=False)
    p.add_argument("--corpus", required=True, metavar="FILE", help="Annotated corpus whose mentions are mined (NIL, composite and out-of-KB mentions are skipped and counted).")
    _add_corpus_options(p)
    _add_kb_options(p, False, "KB of the gold ids (default: the kb.jsonl saved with the linker).")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="Where the pairs and mining_summary.json go.")
    p.add_argument("--split", default="train", metavar="NAME", help="Sub-directory of the pairs and key in the summary (default: %(default)s).")
    p.add_argument("--rule", choices=MINING_RULES, default=MINING_DEFAULTS["rule"],
                   help="paper: misranked pairs, or top-1 vs the best wrong concept; all: every correct/wrong pair in the beam; official: the official ANGEL code, every correct beam name paired with every wrong name ranked above it among the top-k names; tfidf: TF-IDF-similar names as negatives (default: %(default)s).")
    p.add_argument("--top-k", type=_positive_int, default=MINING_DEFAULTS["top_k"], metavar="K", help="Distinct concepts kept per mention (default: %(default)s).")
    p.add_argument("--num-beams", type=_positive_int, default=MINING_DEFAULTS["num_beams"], metavar="N", help="Beams of the constrained search while mining (default: %(default)s).")
    p.add_argument("--tfidf-negatives", type=_positive_int, default=MINING_DEFAULTS["tfidf_negatives"], metavar="N", help="Negatives per mention for --rule tfidf (default: %(default)s).")
    p.add_argument("--gold-fallback", action="store_true", help="When no correct concept is in the beam, use the gold concept's most similar name as chosen.")
    p.add_argument("--seed", type=int, default=42, help="Random seed set before mining (default: %(default)s).")
    p.set_defaults(handler=cmd_mine)

    p = command(
        "build-trie",
        "build names.jsonl and trie.npz for a KB and a tokenizer",
        "Build the linking vocabulary of a KB (names.jsonl: every distinct normalised name with its "
        "concept ids) and the prefix trie over the names' token ids (trie.npz), exactly as training does, "
        "e.g. to link with a trained model against a newer KB.",
        "angel-trl build-trie --kb kb/medic.txt --kb-format medic --tokenizer outputs/ncbi-stage1 --output outputs/medic-trie",
    )
    _add_kb_options(p, True, "The KB file.")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="Tokenizer directory (a trained linker's directory) or Hub id.")
    p.add_argument("--output", required=True, metavar="DIR", help="Directory for names.jsonl and trie.npz (created; existing files replaced).")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True, help="Lowercase names, as training does by default (default: %(default)s).")
    p.add_argument("--max-name-tokens", type=_positive_int, default=MAX_NAME_TOKENS, metavar="N", help="Longer names are cut to N tokens, as in linking (default: %(default)s).")
    p.set_defaults(handler=cmd_build_trie)

    p = command(
        "kb-stats",
        "print the size of a KB (concepts, names, ambiguous names, ...)",
        "Read a KB and print its statistics: concepts, names, distinct normalised names, names shared by "
        "several concepts, alternative ids and repeated-id lines (merged).",
        "angel-trl kb-stats --kb data/demo/kb.jsonl --format json",
    )
    _add_kb_options(p, True, "The KB file.")
    p.add_argument("--format", choices=("table", "json"), default="table", help="Output as a markdown table or JSON (default: %(default)s).")
    p.set_defaults(handler=cmd_kb_stats)
    return parser


def _error_message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    # Loader messages (transformers, the Hub) can span lines: the report stays one line.
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``angel-trl`` command line; returns the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version
            return e.code if isinstance(e.code, int) else 0
        return args.handler(args)
    except CliError as e:
        print(f"{PROG}: error: {_error_message(e)}", file=sys.stderr)
        return e.exit_code
    except (InputFormatError, OSError) as e:
        print(f"{PROG}: error: {_error_message(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
