"""What every recipe does with its arguments: parse the command line and ``--config`` YAML into its
argument dataclasses, and check them before any work.

A user error (a YAML syntax error or invalid UTF-8, an unknown field, a value of the wrong type or
out of range, a missing input file, an output directory that cannot be written) ends the recipe with
one ``<recipe>: error: ...`` line naming the config file, its line and the field, before a model
loads or data is built; Ctrl-C during the run ends it with one ``<recipe>: interrupted`` line and
status 130. The recipes pass their command line in (``sys.argv[1:]``): this module never reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import yaml
from transformers import TrainingArguments
from trl import TrlParser

from angel_trl.errors import INTERRUPTED_EXIT, FieldError, InputFormatError, OutputDirBusyError
from angel_trl.output_paths import unwritable_reason

# Fields naming a directory the recipe writes into, in whichever argument dataclass has them.
OUTPUT_DIR_FIELDS = ("output_dir", "pairs_dir", "corpus_dir")
# argparse names the option in its messages: "argument --num_train_epochs: invalid float value: 'x'".
_ARGPARSE_FIELD = re.compile(r"argument --(\w+)")
# Bounds of training arguments that transformers and TRL leave unchecked (a negative learning rate
# fails in torch once the data is built): field -> (minimum, whether the minimum itself is allowed).
# Checked where a recipe parses them, not in the configs: a test may build one with learning_rate 0
# to keep a model as it is, but a recipe run that cannot train is a mistake.
TRAINING_BOUNDS: dict[str, tuple[float, bool]] = {
    "learning_rate": (0, False),
    "num_train_epochs": (0, False),
    "beta": (0, False),
    "per_device_train_batch_size": (1, True),
    "per_device_eval_batch_size": (1, True),
    "gradient_accumulation_steps": (1, True),
}
_NONE = type(None)
# How a message names a value of a type, alone and in a list.
_TYPE_NAMES = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"), dict: ("a mapping", "mappings")}


class _UsageError(Exception):
    """An argparse error, raised instead of printed with the (hundreds of lines long) usage."""


class RecipeParser(TrlParser):
    """``TrlParser`` whose argparse errors are raised, so that :func:`parse_recipe_args` reports them in
    one line, and whose parsed values are checked against their fields before the dataclasses are built."""

    # The top-level keys of the --config YAML (parse_recipe_args sets them before parsing).
    config_keys: frozenset[str] = frozenset()

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)

    def parse_known_args(self, args=None, namespace=None):
        # The one point where every value is known and no dataclass is built yet: TrlParser passes the
        # YAML values to argparse as defaults, which argparse converts only when they are strings, and
        # HfArgumentParser then builds each dataclass with them unchecked.
        parsed, extras = super().parse_known_args(args, namespace)
        if getattr(parsed, "resume_from_checkpoint", None) is True:
            # YAML's `resume_from_checkpoint: true` is a bool; on the command line it is the string "true".
            parsed.resume_from_checkpoint = "true"
        given = self.config_keys | self._command_line_fields(args)
        check_given_values(self.dataclass_types, {k: v for k, v in vars(parsed).items() if k in given})
        return parsed, extras

    def _command_line_fields(self, args: Sequence[str] | None) -> set[str]:
        """The fields ``args`` set: argparse fills in a default only where the namespace has none, so
        those that still hold a marker afterwards were not given (whatever option spelling was used)."""
        unset = object()
        seen, _ = super().parse_known_args(args, argparse.Namespace(**{a.dest: unset for a in self._actions}))
        return {dest for dest, value in vars(seen).items() if value is not unset}


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


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in characters, as editors count) of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _config_text(path: str) -> str:
    """The config file's text; invalid UTF-8 is an error naming its line and column."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputFormatError(path, None, f"cannot read the config file: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start].decode("utf-8")  # valid: the error is at the first bad byte
        line, column = _line_and_column(before, len(before))
        raise InputFormatError(path, line, f"column {column}: byte 0x{data[e.start]:02x} is not UTF-8 text; save the config as UTF-8") from None


def _yaml_error(path: str, text: str, e: yaml.YAMLError) -> InputFormatError:
    """The one-line error of a YAML error, at its line."""
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML refuses: it has a position, not a mark
        line, column = _line_and_column(text, e.position)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        return InputFormatError(path, line, f"column {column}: character U+{code:04X} is not allowed in YAML ({e.reason})")
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or e
    return InputFormatError(path, mark.line + 1 if mark else None, f"not valid YAML: {_one_line(problem)}")


def read_config_keys(path: str) -> dict[str, int]:
    """The top-level keys of the YAML mapping at ``path``, each with its line number; its ``env``
    (TrlParser's environment variables) must be a mapping."""
    text = _config_text(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        yaml.safe_load(text)  # composing does not build the values (tags, timestamps): this does
    except yaml.YAMLError as e:
        raise _yaml_error(path, text, e) from None
    if not isinstance(node, yaml.MappingNode):
        raise InputFormatError(path, None, "not a YAML mapping of 'field: value' lines")
    keys: dict[str, int] = {}
    for key, value in node.value:
        if key.value in keys:
            # YAML keeps the last value silently: one of the two settings would be lost.
            raise InputFormatError(path, key.start_mark.line + 1, f"{key.value!r} is set twice (also on line {keys[key.value]}); keep one")
        if key.value == "env" and not isinstance(value, yaml.MappingNode):
            raise InputFormatError(path, key.start_mark.line + 1, "env: expects a mapping of environment variables (NAME: value)")
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


def _same(value: object, other: object) -> bool:
    """Equal and of the same type (``1 == 1.0 == True``, but they are not the same setting)."""
    return type(value) is type(other) and value == other


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _matches(value: object, hint: Any) -> bool:
    """Whether ``value`` is one that the annotation ``hint`` allows (an int is a float value too)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(_same(value, a) for a in args)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return isinstance(value, hint) or any(_same(value, m.value) for m in hint)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is tuple:  # a YAML list; tuple[X, ...] or one type per item
        if not isinstance(value, (list, tuple)):
            return False
        items = args[:1] * len(value) if args[1:] == (...,) else args
        return len(items) == len(value) and all(map(_matches, value, items))
    if origin is dict:
        return isinstance(value, dict) and all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this check does not know: left to the dataclass


def _shown(value: object) -> str:
    """``value`` as a message shows it: YAML's null/true/false, containers marked as such."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    kind = {list: " (a list)", tuple: " (a list)", dict: " (a mapping)"}.get(type(value), "")
    return f"{value!r}{kind}"


def _expected(hint: Any) -> str:
    """What ``hint`` allows, in words: "an integer", "a list of strings or null"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        words = [_expected(a) for a in args if a is not _NONE] + ["null"] * (_NONE in args)
        return " or ".join(dict.fromkeys(words))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(_shown, args))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(_shown(m.value) for m in hint)
    if origin in (list, tuple):
        item = args[0] if args else Any
        return f"a list of {_TYPE_NAMES[item][1]}" if item in _TYPE_NAMES else f"a list, each item {_expected(item)}"
    base = origin or hint
    return _TYPE_NAMES[base][0] if base in _TYPE_NAMES else f"a {getattr(base, '__name__', base)}"


def _wants_list(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(map(_wants_list, typing.get_args(hint)))
    return origin in (list, tuple) or hint in (list, tuple)


def check_value(name: str, value: object, hint: Any) -> None:
    """Raise :class:`FieldError` unless ``value`` fits the annotation ``hint`` of field ``name``."""
    if not _matches(value, hint):
        problem = f"expects {_expected(hint)}, not {_shown(value)}"
        if _wants_list(hint) and not isinstance(value, (list, tuple, dict, _NONE)):
            problem += f"; write even one item as a list: [{value}]"  # not read as a list of characters
        raise FieldError(name, problem)


def check_training_bound(name: str, value: object) -> None:
    """Raise :class:`FieldError` when training argument ``name`` is a number out of its :data:`TRAINING_BOUNDS`."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if name == "max_steps" and value != -1 and not value >= 1:
        # transformers trains one step for 0 and reads any negative value as "use num_train_epochs"
        raise FieldError(name, f"must be at least 1, or -1 to train num_train_epochs, not {value}")
    if name not in TRAINING_BOUNDS:
        return
    minimum, allowed = TRAINING_BOUNDS[name]
    if not (value >= minimum if allowed else value > minimum):  # (NaN is refused too)
        raise FieldError(name, f"must be {'at least' if allowed else 'more than'} {minimum}, not {value}")


def check_given_values(dataclass_types: Iterable[type], values: Mapping[str, object]) -> None:
    """:func:`check_value` (and, for training arguments, :func:`check_training_bound`) for each field of
    ``dataclass_types`` given in ``values`` (parsed from the YAML and the command line) other than as
    its default, before the dataclass is built with it."""
    for dtype in dataclass_types:
        # Not field.type: HfArgumentParser rewrites it (Optional[X] becomes X) when it adds the options.
        hints = typing.get_type_hints(dtype)
        for field in dataclasses.fields(dtype):
            if field.init and field.name in values and not _same(values[field.name], _default(field)):
                check_value(field.name, values[field.name], hints[field.name])
                if issubclass(dtype, TrainingArguments):
                    check_training_bound(field.name, values[field.name])


def _given_on_command_line(name: str, argv: Sequence[str]) -> bool:
    options = {f"--{name}", f"--{name.replace('_', '-')}"}  # HfArgumentParser's hyphenated alias too
    return any(a.split("=", 1)[0] in options for a in argv)


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
            parser.config_keys = frozenset(keys)
        *parsed, unused = parser.parse_args_and_config(argv, return_remaining_strings=True)
        if unused:  # TrlParser would raise a ValueError without the word "option"
            raise _UsageError(f"unrecognized arguments: {' '.join(unused)}")
        check_input_files(parsed)
        check_output_dirs(parsed)
    except (_UsageError, InputFormatError, ValueError) as e:
        raise SystemExit(f"{parser.prog}: error: {_message(e, argv, config, keys)}") from None
    return tuple(parsed)


# Set to show a recipe's traceback for a ValueError / OSError instead of its one-line message.
TRACEBACK_ENV = "ANGEL_TRL_TRACEBACK"


def run_recipe(main: Callable[[], object], prog: str | None = None) -> None:
    """Run a recipe's ``main``: Ctrl-C ends it with one ``interrupted`` line and status 130, and a
    damaged input met during the run (:class:`InputFormatError`, :class:`FieldError`), an output
    directory another run holds (:class:`OutputDirBusyError`), or a setting or file the run cannot
    use (``ValueError``, ``OSError``: a model path that does not exist, a split without a file,
    settings found to clash once the data is read) with one error line, and with the traceback too
    when the environment sets ``ANGEL_TRL_TRACEBACK``."""
    prog = prog or os.path.basename(sys.argv[0])  # what argparse calls the program too
    try:
        main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except (InputFormatError, FieldError, OutputDirBusyError) as e:
        raise SystemExit(f"{prog}: error: {_one_line(e)}") from None
    except (ValueError, OSError) as e:
        if os.environ.get(TRACEBACK_ENV):
            raise
        if isinstance(e, OSError) and e.filename and e.strerror:  # a file and what is wrong with it: nothing to trace
            raise SystemExit(f"{prog}: error: {e.filename}: {e.strerror}") from None
        raise SystemExit(f"{prog}: error: {_one_line(e) or type(e).__name__} ({TRACEBACK_ENV}=1 shows where)") from None
