"""The ``angel-trl`` command line: link, evaluate, mine, build-trie and kb-stats over the library.

Each command is one module here (``add_parser`` for its options, ``run`` for what it does), and each
``run`` calls library functions. Bad user input (a missing file, a malformed KB or corpus line, text
without ``[ST] ... [ET]``, a directory that is not a saved linker, an unknown format) ends with one
``angel-trl: error: ...`` line on stderr and a non-zero exit status (2 for command-line usage, 1 for
input); Ctrl-C ends with one ``angel-trl: interrupted`` line and status 130; anything else is a bug and raises.

torch, transformers and datasets are imported inside the ``run`` functions that need them, so that
``--help`` and ``kb-stats`` answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from angel_trl import __version__
from angel_trl.cli import benchmark, build_trie, evaluate, kb_stats, link, mine
from angel_trl.cli.common import PROG, CliError, UsageError
from angel_trl.cli.options import Parser
from angel_trl.defaults import MAX_NAME_TOKENS
from angel_trl.errors import INTERRUPTED_EXIT, InputFormatError, OutputDirBusyError

# In the order `angel-trl --help` lists them.
COMMANDS = (link, evaluate, mine, build_trie, kb_stats, benchmark)


def build_parser() -> argparse.ArgumentParser:
    """The ``angel-trl`` parser: each command's options come from its module's ``add_parser``."""
    parser = Parser(
        prog=PROG,
        description="Generative biomedical entity linking (ANGEL): link mentions with a trained linker, score it, mine preference pairs, build name tries.",
        epilog="Run 'angel-trl COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _error_message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    # Loader messages (transformers, the Hub) can span lines: the report stays one line.
    return " ".join(str(e).split()) or type(e).__name__


def _reads_a_corpus(args: argparse.Namespace) -> bool:
    return any(getattr(args, option, None) for option in ("corpus", "train", "dev", "test"))


def _reads_a_mesh_kb(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "kb", None)) and getattr(args, "kb_format", None) == "mesh"


# Options that mean something only beside another: (option, its default, whether it applies, what it needs).
# Given where it does not apply, an option would be ignored without a word.
_OPTIONS_THAT_NEED_ANOTHER = (
    ("mesh_supplementary", None, _reads_a_mesh_kb, "--kb with --kb-format mesh"),
    ("mesh_tree_prefix", None, _reads_a_mesh_kb, "--kb with --kb-format mesh"),
    ("entity_type", None, _reads_a_corpus, "a corpus to read (--corpus, --train, --dev or --test)"),
    ("corpus_format", "jsonl", _reads_a_corpus, "a corpus to read (--corpus, --train, --dev or --test)"),
    ("max_name_tokens", MAX_NAME_TOKENS, lambda args: bool(getattr(args, "tokenizer", None)), "--tokenizer"),
)


def check_options_apply(args: argparse.Namespace) -> None:
    """Refuse an option given where it does nothing, and a list option naming an item twice."""
    for option, default, applies, needs in _OPTIONS_THAT_NEED_ANOTHER:
        value = getattr(args, option, default)
        if value is not None and value != default and not applies(args):
            raise UsageError(f"--{option.replace('_', '-')} applies only with {needs}")
    for option in ("protocols", "also_rules"):
        values = getattr(args, option, None) or []
        if len(set(values)) < len(values):
            raise UsageError(f"--{option.replace('_', '-')} names {', '.join(sorted({v for v in values if values.count(v) > 1}))} twice")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``angel-trl`` command line; returns the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version
            return e.code if isinstance(e.code, int) else 0
        check_options_apply(args)
        return args.handler(args)
    except CliError as e:
        print(f"{PROG}: error: {_error_message(e)}", file=sys.stderr)
        return e.exit_code
    except (InputFormatError, OutputDirBusyError, OSError) as e:
        print(f"{PROG}: error: {_error_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C is the user's choice, not a failure to explain with a traceback.
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT


if __name__ == "__main__":
    sys.exit(main())
