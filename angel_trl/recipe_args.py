"""What every recipe does with its arguments: parse the command line and ``--config`` YAML into its
argument dataclasses, and check them before any work.

A user error (a YAML syntax error, an unknown field, a bad value, a missing input file, an output
directory that cannot be written) ends the recipe with one ``<recipe>: error: ...`` line naming the
config file, its line and the field, before a model loads or data is built; Ctrl-C during the run
ends it with one ``<recipe>: interrupted`` line and status 130. The recipes pass their command line
in (``sys.argv[1:]``): this module never reads it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import yaml
from trl import TrlParser

from angel_trl.errors import INTERRUPTED_EXIT, FieldError, InputFormatError, OutputDirBusyError
from angel_trl.output_paths import unwritable_reason

# Fields naming a directory the recipe writes into, in whichever argument dataclass has them.
OUTPUT_DIR_FIELDS = ("output_dir", "pairs_dir", "corpus_dir")
# argparse names the option in its messages: "argument --num_train_epochs: invalid float value: 'x'".
_ARGPARSE_FIELD = re.compile(r"argument --(\w+)")


class _UsageError(Exception):
    """An argparse error, raised instead of printed with the (hundreds of lines long) usage."""


class RecipeParser(TrlParser):
    """``TrlParser`` whose argparse errors are raised, so that :func:`parse_recipe_args` reports them in one line."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def config_path(argv: Sequence[str]) -> str | None:
    """The file after ``--config`` (how TrlParser finds it), or None."""
    if "--config" not in argv:
        return None
    i = list(argv).index("--config")
    if i + 1 >= len(argv):
        raise _UsageError("--config needs a YAML file")
    return argv[i + 1]


def read_config_keys(path: str) -> dict[str, int]:
    """The top-level keys of the YAML mapping at ``path``, each with its line number."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InputFormatError(path, None, f"cannot read the config file: {e.strerror or e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        yaml.safe_load(text)  # composing does not build the values (tags, timestamps): this does
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or e
        raise InputFormatError(path, mark.line + 1 if mark else None, f"not valid YAML: {_one_line(problem)}") from None
    if not isinstance(node, yaml.MappingNode):
        raise InputFormatError(path, None, "not a YAML mapping of 'field: value' lines")
    keys: dict[str, int] = {}
    for key, _ in node.value:
        if key.value in keys:
            # YAML keeps the last value silently: one of the two settings would be lost.
            raise InputFormatError(path, key.start_mark.line + 1, f"{key.value!r} is set twice (also on line {keys[key.value]}); keep one")
        keys[key.value] = key.start_mark.line + 1
    return keys


def check_config_keys(path: str, keys: dict[str, int], known: set[str]) -> None:
    """Refuse a config key no argument dataclass has, naming its line (TrlParser would only say so
    after building every dataclass, with a traceback)."""
    unknown = [key for key in keys if key not in known]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    more = f"; also unknown: {', '.join(map(repr, unknown[1:]))}" if unknown[1:] else ""
    raise InputFormatError(path, keys[key], f"unknown field {key!r}{hint}{more}")


def _given_on_command_line(name: str, argv: Sequence[str]) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in argv)


def _where(name: str, argv: Sequence[str], config: str | None, keys: dict[str, int]) -> str:
    """Where the value of field ``name`` came from: its option, or its line of the config file."""
    if _given_on_command_line(name, argv):
        return f"--{name}"
    if config is not None and name in keys:
        return f"{config}:{keys[name]}: {name}"
    return name


def check_input_files(parsed: Sequence[object]) -> None:
    """Every argument dataclass with a ``check_files`` method (the data arguments) checks its input files."""
    for args in parsed:
        check = getattr(args, "check_files", None)
        if callable(check):
            check()


def check_output_dirs(parsed: Sequence[object]) -> None:
    """Every output directory field (:data:`OUTPUT_DIR_FIELDS`) that is set can be written."""
    for args in parsed:
        if not dataclasses.is_dataclass(args):
            continue
        for name in OUTPUT_DIR_FIELDS:
            value = getattr(args, name, None)
            if isinstance(value, str) and value:
                reason = unwritable_reason(value, directory=True)
                if reason:
                    raise FieldError(name, f"{value}: cannot write here: {reason}")


def _message(e: Exception, argv: Sequence[str], config: str | None, keys: dict[str, int]) -> str:
    """The one-line report of a user error met while parsing and checking."""
    if isinstance(e, FieldError):
        return f"{_where(e.field, argv, config, keys)}: {_one_line(e.problem)}"
    if isinstance(e, _UsageError):
        named = _ARGPARSE_FIELD.search(str(e))
        if named and not _given_on_command_line(named.group(1), argv) and named.group(1) in keys:
            return f"{config}:{keys[named.group(1)]}: {_one_line(e)}"
        return f"{_one_line(e)} (see --help)"
    if isinstance(e, InputFormatError) or config is None:
        return _one_line(e)
    return f"{config}: {_one_line(e)}"


def parse_recipe_args(arguments: Sequence[type], argv: Sequence[str], prog: str | None = None) -> tuple:
    """``TrlParser(arguments).parse_args_and_config(argv)``, each input file and output directory
    checked; a user error raises ``SystemExit`` with one line (see the module docstring)."""
    parser = RecipeParser(arguments, **({"prog": prog} if prog else {}))
    argv = list(argv)
    config, keys = None, {}
    try:
        config = config_path(argv)
        if config is not None:
            keys = read_config_keys(config)
            # "env" is TrlParser's own key: environment variables set before parsing.
            check_config_keys(config, keys, {action.dest for action in parser._actions} | {"env"})
        *parsed, unused = parser.parse_args_and_config(argv, return_remaining_strings=True)
        if unused:  # TrlParser would raise a ValueError without the word "option"
            raise _UsageError(f"unrecognized arguments: {' '.join(unused)}")
        check_input_files(parsed)
        check_output_dirs(parsed)
    except (_UsageError, InputFormatError, ValueError) as e:
        raise SystemExit(f"{parser.prog}: error: {_message(e, argv, config, keys)}") from None
    return tuple(parsed)


def run_recipe(main: Callable[[], object], prog: str | None = None) -> None:
    """Run a recipe's ``main``: Ctrl-C ends it with one ``interrupted`` line and status 130, and a
    damaged input met during the run (:class:`InputFormatError`, :class:`FieldError`) or an output
    directory another run holds (:class:`OutputDirBusyError`) with one error line."""
    prog = prog or os.path.basename(sys.argv[0])  # what argparse calls the program too
    try:
        main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except (InputFormatError, FieldError, OutputDirBusyError) as e:
        raise SystemExit(f"{prog}: error: {_one_line(e)}") from None
