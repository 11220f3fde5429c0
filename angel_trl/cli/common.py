"""What the ``angel-trl`` commands share: user errors, output to stdout or a file, and loading the
KB, corpus and linker the options name.

torch and transformers are imported inside the loaders, so that ``--help`` and ``kb-stats`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from angel_trl.data.corpus import Corpus, load_corpus
from angel_trl.data.files import write_json, write_jsonl
from angel_trl.data.kb import KnowledgeBase, load_kb
from angel_trl.errors import InputFormatError
from angel_trl.output_paths import check_output
from angel_trl.progress import on_terminal

# A Hub model id ("owner/name"); any other path that does not exist locally is a user error.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


PROG = "angel-trl"


class CliError(Exception):
    """A user error: reported as one line, no traceback."""

    exit_code = 1


class UsageError(CliError):
    """Bad command-line arguments (argparse's exit status)."""

    exit_code = 2


# ---------------------------------------------------------------------------------------- output
def no_loading_bar_in_a_log() -> None:
    """transformers draws a "Loading weights" bar even into a log file: off unless on a terminal."""
    if not on_terminal():
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _is_stdout(output: str | None) -> bool:
    return output in (None, "-")


# The command-line options that name files a command reads (those a command has).
_INPUT_OPTIONS = ("input", "corpus", "train", "dev", "test", "kb", "mesh_supplementary", "hybrid")


def check_outputs(*outputs: str | None, directory: bool = False, args: argparse.Namespace | None = None) -> None:
    """Fail before any work when an output file (or ``directory``) cannot be written, is named twice,
    or is one of the files ``args`` names to read (it would be overwritten); stdout and unset ones pass.
    Files that are not regular files (``/dev/null``) may be named more than once."""
    if any(output == "" for output in outputs):
        raise UsageError("an output path is empty")
    named = [output for output in outputs if not _is_stdout(output)]
    for output in named:
        check_output(output, directory)
    written: dict[str, str] = {}
    for output in named:
        if Path(output).exists() and not Path(output).is_file() and not directory:
            continue
        real = os.path.realpath(output)
        if real in written:
            raise UsageError(f"{written[real]} and {output} are the same file: one output would overwrite the other")
        written[real] = output
    for option in _INPUT_OPTIONS if args is not None else ():
        value = getattr(args, option, None)
        if isinstance(value, str) and value != "-" and (real := os.path.realpath(value)) in written:
            raise UsageError(f"{written[real]} is also read (--{option.replace('_', '-')} {value}): writing it would overwrite the input")


def print_counts(label: str, counts: Mapping[str, int]) -> None:
    """``label: key value, ...`` on stderr: what a reader repaired or skipped, or a writer changed."""
    print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)


def emit_json(obj: dict, output: str | None) -> None:
    """``obj`` as indented JSON on stdout, or into the file ``output``."""
    if _is_stdout(output):
        print(json.dumps(obj, indent=2, ensure_ascii=False))
    else:
        write_json(output, obj)


def emit_jsonl(rows: list[dict], output: str | None) -> None:
    """One JSON line per row on stdout, or into the file ``output``."""
    if _is_stdout(output):
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        write_jsonl(output, rows)


# ---------------------------------------------------------------------------------------- KB and corpus
def kb_from_args(args: argparse.Namespace) -> KnowledgeBase:
    """The KB of ``--kb`` / ``--kb-format`` / ``--mesh-*``."""
    if args.kb_format != "mesh" and (args.mesh_supplementary or args.mesh_tree_prefix):
        raise UsageError("--mesh-supplementary and --mesh-tree-prefix need --kb-format mesh")
    return load_kb(args.kb, args.kb_format, args.mesh_supplementary, args.mesh_tree_prefix)


def corpus_from_args(path: str, args: argparse.Namespace) -> Corpus:
    """The corpus at ``path``, read with ``--corpus-format`` and ``--entity-type``."""
    return load_corpus(path, args.corpus_format, args.entity_type)


def as_linker_expects(args: argparse.Namespace, linker, *corpora: Corpus | None) -> list[Corpus | None]:
    """``corpora`` with abbreviations expanded if ``--expand-abbreviations`` says so or, unset, if the
    linker was trained so (decided once for all of them, so a mismatch is warned about once)."""
    from angel_trl.data.arguments import resolve_expansion

    if not resolve_expansion(args.expand_abbreviations, linker.config.expand_abbreviations):
        return list(corpora)
    from angel_trl.data.abbreviations import expand_abbreviations

    return [expand_abbreviations(c) if c is not None else None for c in corpora]


def kb_for_linker(kb: KnowledgeBase | None, linker, model: str) -> KnowledgeBase:
    """The ``--kb`` given, else the KB saved beside the linker."""
    kb = kb if kb is not None else linker.kb
    if kb is None:
        raise CliError(f"{model}: no kb.jsonl saved with the linker; pass --kb FILE")
    return kb


def linker_over_kb(linker, kb: KnowledgeBase | None, hybrid: Path | None):
    """``linker``, or one that decodes over ``kb`` (its own trie) when ``kb`` has other concepts or names.

    The trie decides what can be predicted: scoring against a KB the trie does not hold would
    report the saved KB's results under the given KB's name.
    """
    from angel_trl.linking.linker import same_concepts

    if kb is None:
        return linker
    if hybrid is not None and not (linker.kb is not None and same_concepts(kb, linker.kb)):
        raise UsageError(f"--hybrid links with the KB the hybrid linker was fitted on; {kb.source} differs from the linker's kb.jsonl")
    return linker.over_kb(kb, warn=lambda message: print(f"{PROG}: {message}", file=sys.stderr))


# ---------------------------------------------------------------------------------------- linker and tokenizer
def check_source(source: str, what: str, required: Sequence[str] = ()) -> None:
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
def loading(what: str, source: str) -> Iterator[None]:
    """Turn a loader's OSError / ValueError (missing weights, unknown Hub id, bad tokenizer) into a user error."""
    try:
        yield
    except InputFormatError:
        raise  # it names the damaged file already
    except (OSError, ValueError) as e:
        if Path(source).exists():
            raise CliError(f"cannot load {what} from {source}: {e}") from e
        raise CliError(f"{source}: no such directory, and loading {what} from the Hub failed: {e}") from e


def linker_from_args(args: argparse.Namespace, **overrides: int | bool | None):
    """``EntityLinker.from_pretrained(args.model)``; ``overrides`` that are not None replace saved config fields."""
    from angel_trl.linking.linker import LINKER_CONFIG, NAMES_FILE, TRIE_FILE, EntityLinker

    no_loading_bar_in_a_log()
    check_source(args.model, "a saved angel-trl linker", (LINKER_CONFIG, NAMES_FILE, TRIE_FILE))
    with loading("the linker", args.model):
        return EntityLinker.from_pretrained(args.model, revision=args.revision, device=args.device, **{k: v for k, v in overrides.items() if v is not None})


def hybrid_file(args: argparse.Namespace) -> Path | None:
    """With ``--hybrid``: the hybrid.json beside the model (or the FILE given), checked before anything loads."""
    if args.hybrid is None:
        return None
    if getattr(args, "exact_match_first", None):
        # The hybrid's ranker decides the order (exact matches are among its candidates, with their
        # feature); putting them first reorders only the beam it reads, which its fit never saw.
        raise UsageError("--exact-match-first reorders beam search's ranking; with --hybrid the ranker orders the candidates: give one of the two")
    from angel_trl.hybrid.linker import HYBRID_FILE

    path = Path(args.hybrid or Path(args.model) / HYBRID_FILE)
    if not path.is_file():
        raise CliError(f"{path}: no hybrid linker file; fit one with recipes/fit_hybrid.py (--model_dir {args.model}), or pass --hybrid FILE")
    return path


def with_hybrid(linker, path: Path | None):
    """``linker``, or the hybrid linker over it that ``path`` (:func:`hybrid_file`) holds."""
    if path is None:
        return linker
    from angel_trl.hybrid.linker import HybridLinker

    try:
        return HybridLinker.load(linker, path, show_progress=True)
    except InputFormatError:
        raise  # it names the file and the problem already
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"{path}: not a usable hybrid linker file: {e}") from None
    except ImportError as e:  # a hybrid saved with the dense retriever, on an install without the 'bench' extra
        raise CliError(f"{path}: {e}") from None
