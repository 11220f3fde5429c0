"""The argparse side the ``angel-trl`` commands share: a parser whose errors are one line, each
command's help page, and the option groups (KB, corpus, linker) several commands take."""

from __future__ import annotations

import argparse
import textwrap
from typing import NoReturn

from angel_trl.cli.common import UsageError
from angel_trl.data.corpus import CORPUS_FORMATS
from angel_trl.data.kb import KB_FORMATS

# What `parser.add_subparsers()` returns (argparse does not name the type publicly).
Subparsers = argparse._SubParsersAction


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are :class:`UsageError` (one line, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        # argparse prints the usage and then the error; we keep every user error to one line.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def file_name(text: str) -> str:
    """argparse type: a name for files or a folder inside a directory the command writes, not a path
    that could lead out of it (``../x``, ``a/b``) or a hidden, empty one."""
    if not text.strip() or text in (".", "..") or text.startswith(".") or any(sep in text for sep in ("/", "\\", "\0")):
        raise argparse.ArgumentTypeError(f"expected a plain name (no '/', not empty, not starting with '.'), got {text!r}")
    return text


def _int_at_least(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def add_command(subparsers: Subparsers, name: str, summary: str, description: str, example: str) -> argparse.ArgumentParser:
    """The parser of one command: ``summary`` in the command list, ``description`` and ``example`` in its ``--help``."""
    # Raw formatting keeps the example lines apart, so the prose is wrapped here.
    return subparsers.add_parser(name, help=summary, description=textwrap.fill(description, 88), epilog="Example:\n  " + example, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_kb_options(p: argparse.ArgumentParser, required: bool, kb_help: str) -> None:
    """``--kb`` and how to read it (read by :func:`angel_trl.cli.common.kb_from_args`)."""
    p.add_argument("--kb", required=required, metavar="FILE", help=kb_help)
    p.add_argument("--kb-format", choices=KB_FORMATS, default="jsonl", help="KB file format (default: %(default)s; medic = CTD MEDIC, mesh = MeSH descriptor TSV, obo = an OBO ontology file, hf = a Hugging Face dataset of concepts: a save_to_disk or parquet folder, or a Hub id).")
    p.add_argument("--mesh-supplementary", metavar="FILE", help="MeSH supplementary-records TSV added to the KB (--kb-format mesh).")
    p.add_argument("--mesh-tree-prefix", action="append", metavar="PREFIX", help="Keep MeSH descriptors whose tree numbers start with PREFIX, e.g. D for chemicals (repeatable; all when unset).")


def add_corpus_options(p: argparse.ArgumentParser) -> None:
    """How a corpus is read, and whether its abbreviations are expanded."""
    p.add_argument("--corpus-format", choices=CORPUS_FORMATS, default="jsonl", help="Corpus file format (default: %(default)s).")
    p.add_argument("--entity-type", action="append", metavar="TYPE", help="Keep only mentions of this type, e.g. Disease for BC5CDR (repeatable; all when unset).")
    p.add_argument(
        "--expand-abbreviations", action=argparse.BooleanOptionalAction, default=None,
        help="Link a mention that is an abbreviation defined in its document, 'myocardial infarction (MI)', as its long form (default: as the model was trained, recorded in its linker_config.json).",
    )


def add_linker_options(p: argparse.ArgumentParser, beams_and_top_k: bool = True) -> None:
    """The linker (``MODEL_DIR``) and how it decodes; ``beams_and_top_k=False`` where the command sets those itself."""
    p.add_argument("model", metavar="MODEL_DIR", help="Directory written by a training recipe (model, tokenizer, trie.npz, names.jsonl, linker_config.json), or a Hub id.")
    if beams_and_top_k:
        p.add_argument("--num-beams", type=positive_int, metavar="N", help="Beams of the constrained search (default: the saved linker config's).")
        p.add_argument("--top-k", type=positive_int, metavar="K", help="Distinct concepts returned per mention (default: the saved linker config's).")
        p.add_argument("--exact-match-first", action="store_true", default=None, help="Rank first the concepts with a name equal to the mention (KB names, plus training mentions if the linker's trie has them), then the model's ranking.")
        p.add_argument("--hybrid", nargs="?", const="", default=None, metavar="FILE", help="Link with the hybrid linker (beam + retrieved candidates, exact model scores, a ranker): the hybrid.json recipes/fit_hybrid.py wrote beside the model, or FILE. Scores are then the ranker's probabilities.")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="Mentions per decoding batch (default: the saved linker config's).")
    p.add_argument("--max-source-length", type=positive_int, metavar="N", help="Encoder tokens per source; longer ones lose context, counted and logged (default: the saved linker config's).")
    p.add_argument("--revision", metavar="REV", help="Branch, tag or commit of a Hub linker (Hub ids only; a token comes from HF_TOKEN or `hf auth login`).")
    p.add_argument("--device", metavar="DEVICE", help="Torch device, e.g. cpu or cuda:0 (default: where the model loads, cpu).")


def add_benchmark_hybrid_options(p: argparse.ArgumentParser) -> None:
    """The hybrid's ablation, ranker choice and fit set, and the dictionary protocols: options of
    ``angel-trl benchmark`` and of ``benchmarks/accuracy.py`` alike."""
    from angel_trl.defaults import HYBRID_FIT_SETS, fit_sets_help

    p.add_argument(
        "--hybrid-ablation", action="store_true",
        help="With --hybrid, also the ablation rankers (the one chosen on dev by document folds, or with --hybrid-choose-ranker the default; all features; "
        "model score only; + TF-IDF score; model with trained concepts apart + retriever scores; model and its name prior + retriever scores; model and name length + retriever scores; "
        "all features fit pointwise; with the dense retriever, all but dense) and the hybrid fit on each other --hybrid-fit-on set, on the same scored candidates. "
        "The hybrid row itself fits the model and retriever scores unless --hybrid-choose-ranker.",
    )
    p.add_argument(
        "--hybrid-choose-ranker", action="store_true",
        help="With --hybrid, the hybrid row's ranker is chosen on dev by held-out acc@1 over 5 document folds (all features and the menu: model with trained "
        "concepts apart + retriever scores, model + retriever scores, model + TF-IDF, model alone) instead of the fixed model + retriever scores; "
        "docs/hybrid.md says when that is worth it.",
    )
    p.add_argument("--hybrid-fit-on", choices=HYBRID_FIT_SETS, help="Which dev mentions the hybrid's ranker is fit on: " + fit_sets_help() + ". Default: unseen-concept under --zero-shot (test's concepts are all new), else all.")
    p.add_argument("--protocols", nargs="+", choices=["kb", "kb+train"], default=["kb", "kb+train"], help="Dictionary protocols to run: KB names only, and/or KB + training mentions as synonyms (default: both).")
