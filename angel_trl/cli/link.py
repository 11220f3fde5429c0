"""``angel-trl link``: link marked mentions, or every mention of a corpus, and write the predictions."""

from __future__ import annotations

import argparse
import sys

from angel_trl.cli.common import CliError, UsageError, as_linker_expects, check_outputs, corpus_from_args, emit_jsonl, hybrid_file, linker_from_args, print_counts, with_hybrid
from angel_trl.cli.options import Subparsers, add_command, add_corpus_options, add_linker_options
from angel_trl.data.files import check_unicode_text, decoded_lines, read_lines


def add_parser(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
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
    add_linker_options(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", metavar="TEXT", help="A text with one '[ST] mention [ET]' span (repeatable).")
    source.add_argument("--input", metavar="FILE", help="A file of such texts, one per line ('-' = stdin); blank lines are skipped, rows carry the line number.")
    source.add_argument("--corpus", metavar="FILE", help="An annotated corpus: link every mention (NIL ones too).")
    add_corpus_options(p)
    p.add_argument("--output", metavar="FILE", help="Write the JSON lines here (default: stdout).")
    p.add_argument(
        "--format", choices=("jsonl", "pubtator", "bigbio"), default="jsonl",
        help="With --corpus: jsonl (default: one line per mention, top-k with scores), or the corpus itself with each mention's top-1 "
        "predicted id, as PubTator or as BigBIO-kb JSONL (the 'normalized' field), for the tools that read those; needs --output.",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from angel_trl.evaluation import candidate_rows, count_truncated_sources

    check_outputs(args.output, args=args)
    if args.format != "jsonl" and not (args.corpus and args.output):
        raise UsageError(f"--format {args.format} writes a corpus with its predicted ids: it needs --corpus and --output")
    if args.corpus:
        corpus = read = corpus_from_args(args.corpus, args)
        mentions = corpus.mentions
        if args.format == "pubtator":
            from angel_trl.data.export import check_pubtator_writable

            try:  # before linking, not after it
                check_pubtator_writable(corpus)
            except ValueError as e:
                raise UsageError(f"--format pubtator: {args.corpus}: {e}") from None
        rows = [{"doc_id": m.doc_id, "start": m.start, "end": m.end, "mention": m.text, "gold_ids": list(m.ids)} for m in mentions]
    else:
        rows, texts = _marked_inputs(args)
    hybrid = hybrid_file(args)
    linker = linker_from_args(args, num_beams=args.num_beams, top_k=args.top_k, batch_size=args.batch_size, max_source_length=args.max_source_length, exact_match_first=args.exact_match_first)
    if args.corpus:
        (corpus,) = as_linker_expects(args, linker, corpus)
        mentions = corpus.mentions
    inputs = linker.inputs_for(mentions, corpus.texts()) if args.corpus else _link_inputs(linker, texts)
    linker = with_hybrid(linker, hybrid)
    results = linker.link(inputs, show_progress=True)
    count_truncated_sources(linker, inputs, args.corpus or args.input or "--text")  # warns when some were cut
    if args.corpus and corpus.counts:
        # What the reader repaired or skipped (duplicate document ids, whitespace around mentions, ...), as evaluate says.
        print_counts(f"corpus {args.corpus}", corpus.counts)
    for row, result in zip(rows, results):
        row["mention"] = result.mention
        row["predictions"] = candidate_rows(result)
    if args.format == "jsonl":
        emit_jsonl(rows, args.output)
        return 0
    from angel_trl.data.export import write_bigbio_predictions, write_pubtator_predictions

    predicted = [r.top_ids for r in results]
    if args.format == "pubtator":
        changed = write_pubtator_predictions(args.output, read, predicted)  # the text as read, not expanded
        if changed:
            print_counts("written to fit PubTator", changed)
    else:
        write_bigbio_predictions(args.output, read, predicted)
    return 0


def _link_inputs(linker, texts: list[str]) -> list:
    """Every marked mention of ``texts``, read with the linker's own text settings."""
    from angel_trl.linking.linker import LinkInput

    config = linker.config.example_config
    return [item for text in texts for item in LinkInput.all_from_marked(text, config)]


def _marked_lines(args: argparse.Namespace) -> list[tuple[dict, str, str]]:
    """``(row metadata, marked text, where it came from)`` for each --text or --input line."""
    if args.text:
        for t in args.text:  # arguments that are not UTF-8 reach Python as lone surrogates
            check_unicode_text(t, "--text", None)
        return [({"text": t}, t, "--text") for t in args.text]
    source = "<stdin>" if args.input == "-" else args.input
    lines = decoded_lines(sys.stdin.buffer, source) if args.input == "-" else read_lines(args.input)
    out = []
    for lineno, line in lines:
        if line.strip():
            out.append(({"line": lineno, "text": line}, line, f"{source}:{lineno}"))
    if not out:
        raise CliError(f"{source}: no marked lines to link")
    return out


def _marked_inputs(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """One row (its metadata) per marked mention of --text / --input, and the marked texts.

    A line with several ``[ST] ... [ET]`` spans gives one row per span, in order, each with its
    offsets in the text without markers; every line is checked before the model loads.
    """
    from angel_trl.text.examples import parse_marked

    rows, texts = [], []
    for meta, text, where in _marked_lines(args):
        try:
            _, spans = parse_marked(text)
        except ValueError as e:
            raise CliError(f"{where}: {e}") from None
        rows.extend({**meta, "start": start, "end": end} for start, end in spans)
        texts.append(text)
    return rows, texts
